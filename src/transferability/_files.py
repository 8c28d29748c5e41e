"""Files the library writes: atomic, confined to their folder, and recovered when corrupt.

* :func:`atomic_write` writes through a unique temporary file in the target's folder, fsyncs
  it and renames it into place (``os.replace``), so a reader never sees a partial file and
  concurrent writers never collide. A failed write (full disk, ``ulimit -f``) removes the
  temporary file and raises :class:`StorageError` with a one-line message.
* :func:`inside` resolves a path and checks that it lies inside a root folder, as a last
  defence before anything is opened for writing.
* :func:`quarantine` moves a corrupt cached file aside (``<name>.corrupt-<time>``) with a
  warning, so the caller can recompute it.
* :func:`check_writable_dir` fails before any computation when an output or cache folder
  cannot be written.
* :func:`read_yaml` is ``yaml.safe_load`` with limits on size and alias expansion.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["StorageError", "atomic_write", "write_bytes", "inside", "quarantine",
           "check_writable_dir", "read_yaml", "parse_yaml"]

log = logging.getLogger("transferability")


class StorageError(OSError):
    """A file could not be written (full disk, file-size limit, permissions)."""


class _Recording:
    """A file that remembers the ``OSError`` of a failed write: writers implemented in C++
    (``torch.save``) report a full disk as a ``RuntimeError`` of their own."""

    def __init__(self, file: IO[bytes]):
        self._file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str):
        return getattr(self._file, name)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a fresh temporary file, then move it to ``path`` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would ignore the user's umask
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    recording = None
    try:
        with os.fdopen(fd, "wb") as f:
            recording = _Recording(f)
            write(recording)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        error = exc if isinstance(exc, OSError) else getattr(recording, "error", None)
        if error is not None:
            raise StorageError(f"cannot write {path}: {error.strerror or error}") from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda f: f.write(data))


def inside(root: str | Path, path: str | Path) -> Path:
    """``path`` resolved, checked to lie inside ``root`` (resolved); a ``ValueError`` if not."""
    root_r = Path(root).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root_r):
        raise ValueError(f"path: {path} would lie outside {root_r}; refusing to write there")
    return resolved


def quarantine(path: str | Path, reason: str) -> Path | None:
    """Move a corrupt file aside, warn, and return where it went (``None`` if it vanished)."""
    path = Path(path)
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    log.warning("%s is corrupt (%s); moved it to %s and recomputing", path, reason, target.name)
    return target


def check_writable_dir(path: str | Path, name: str) -> Path:
    """Create ``path`` if needed and check that files can be written in it, before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}: {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"{name}: cannot write in {path} ({exc.strerror or exc})") from None
    return path


#: Limits on a YAML file: its size, and its number of nodes once aliases are expanded (an
#: "alias bomb" of a few lines expands to billions of nodes).
YAML_MAX_BYTES = 1 << 20
YAML_MAX_NODES = 100_000


def read_yaml(path: str | Path, name: str = "spec"):
    """``yaml.safe_load`` of a file, refusing files over 1 MiB and alias bombs."""

    path = Path(path)
    try:
        size = path.stat().st_size if path.is_file() else None
    except (OSError, ValueError):  # NUL bytes, overlong names
        raise ValueError(f"{name}: cannot read {str(path)[:200]!r}") from None
    if size is None:
        raise ValueError(f"{name}: no such file {path}")
    if size > YAML_MAX_BYTES:
        raise ValueError(f"{name}: {path} is {size:,} bytes; the limit is {YAML_MAX_BYTES:,}")
    return parse_yaml(path.read_text(errors="replace"), name)


def parse_yaml(text: str, name: str = "spec"):
    """``yaml.safe_load`` of ``text`` with the same node limit as :func:`read_yaml`."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{name}: invalid YAML: {str(exc).splitlines()[0]}") from None
    sizes: dict[int, int] = {}

    def expanded(obj) -> int:  # nodes after alias expansion, memoised per shared object
        if id(obj) in sizes:
            return sizes[id(obj)]
        children = (obj.values() if isinstance(obj, dict) else obj
                    if isinstance(obj, list) else ())
        sizes[id(obj)] = total = 1 + sum(expanded(c) for c in children)
        if total > YAML_MAX_NODES:
            raise ValueError(f"{name}: YAML expands to more than {YAML_MAX_NODES:,} nodes "
                             "(aliases?); refusing it")
        return total

    try:
        expanded(data)
    except RecursionError:
        raise ValueError(f"{name}: YAML is nested too deeply") from None
    return data
