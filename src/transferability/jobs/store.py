"""The results store: one SQLite database (WAL mode) with one row per finished job.

A row holds the job's key, kind, config, result (JSON), the keys of its inputs, its code
version, when and where it ran (start, end, duration, host, library and torch versions)
and, when the job made a large artifact (a checkpoint, a feature array), the artifact's
file name and SHA-256. Artifacts are files in ``<name>.artifacts/`` beside the database,
named by key and written atomically *before* their row, so a row never points at a
half-written file and a checksum check refuses one that was damaged later.

Several processes may write one store at once: SQLite serialises the writers, and a job
finished twice keeps its first row. A file that is not such a store (corrupt, foreign,
written by a newer schema) is refused with an error naming it and never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import _results
from .._files import quarantine, write_bytes
from ..models import CheckpointError, load_checkpoint
from .graph import Job, Output, get_job_kind, list_job_kinds

__all__ = ["ResultStore", "Record", "StoreError", "STORE_FILE", "SCHEMA", "open_store"]

log = logging.getLogger("transferability")

#: The store's file name in a cache directory.
STORE_FILE = "results.sqlite"
#: The database layout this library writes; a newer one is refused.
SCHEMA = 1
_APPLICATION_ID = 0x54524E53  # "TRNS" in the SQLite header: this library's stores
_SQLITE_HEADER = b"SQLite format 3\x00"

_COLUMNS = ("key", "kind", "label", "study", "config", "result", "inputs", "code_version",
            "artifact", "checksum", "started", "finished", "duration", "host",
            "library_version", "torch_version")
_CREATE = f"""
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, label TEXT NOT NULL, study TEXT NOT NULL,
    config TEXT NOT NULL, result TEXT NOT NULL, inputs TEXT NOT NULL,
    code_version TEXT NOT NULL, artifact TEXT, checksum TEXT,
    started REAL NOT NULL, finished REAL NOT NULL, duration REAL NOT NULL, host TEXT NOT NULL,
    library_version TEXT NOT NULL, torch_version TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_kind ON jobs (kind);
CREATE INDEX IF NOT EXISTS jobs_study ON jobs (study);
PRAGMA application_id = {_APPLICATION_ID};
PRAGMA user_version = {SCHEMA};
"""


class StoreError(ValueError):
    """A file that is not a usable results store; it is left as it is."""


@dataclass(frozen=True)
class Record:
    """One finished job, as stored."""

    key: str
    kind: str
    label: str
    study: str
    config: dict
    value: object
    inputs: dict
    code_version: str
    artifact: str | None
    checksum: str | None
    started: float
    finished: float
    duration: float
    host: str
    library_version: str
    torch_version: str

    @property
    def current(self) -> bool:
        """Whether this library's code for the job kind is the code that computed it."""
        return self.kind in list_job_kinds() and get_job_kind(self.kind).version == \
            self.code_version

    def as_dict(self) -> dict:
        return {c: getattr(self, "value" if c == "result" else c) for c in _COLUMNS}


def encode_value(value) -> str:
    """A job's result as JSON text (NaN kept: numbers must survive the round trip)."""
    try:
        return json.dumps(_results._encode(value))
    except TypeError as exc:
        raise TypeError(f"a job's result must be JSON data ({exc})") from None


class ResultStore:
    """Finished jobs in the SQLite file ``path`` (see the module docstring).

    ``ResultStore.in_cache(cache_dir)`` opens the default store of a cache directory.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.artifacts = self.path.with_name(self.path.name.removesuffix(".sqlite")
                                             + ".artifacts")
        if self.path.is_file() and self.path.stat().st_size:
            self._db, self._lazy = self._open(), False
        else:  # nothing to read yet: the file is made by the first write
            if self.path.is_dir():
                raise self._refuse("is a folder, not a results store file")
            self._db, self._lazy = sqlite3.connect(":memory:", isolation_level=None), True
            self._db.executescript(_CREATE)

    def _writable(self) -> None:
        if self._lazy:
            self._db.close()
            self._db, self._lazy = self._open(), False

    @classmethod
    def in_cache(cls, cache_dir: str | Path | None = None) -> ResultStore:
        from ..utils import cache_dir as default_cache_dir
        return cls(Path(cache_dir if cache_dir is not None else default_cache_dir()) / STORE_FILE)

    # ---- opening -------------------------------------------------------------------
    def _refuse(self, why: str) -> StoreError:
        return StoreError(f"store: {self.path} {why}; it was left untouched (choose another "
                          "file with --store)")

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise self._refuse("is a folder, not a results store file")
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                if f.read(16) != _SQLITE_HEADER:
                    raise self._refuse("is not a results store (not an SQLite database)")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"store: cannot create {self.path.parent} "
                                 f"({exc.strerror or exc})") from None
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"store: cannot open {self.path} ({exc})") from None
        try:
            with self._errors():
                db.execute("PRAGMA busy_timeout = 60000")
                app, = db.execute("PRAGMA application_id").fetchone()
                version, = db.execute("PRAGMA user_version").fetchone()
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if app == 0 and tables == 0:  # a new file: make it a store
                    db.execute("PRAGMA journal_mode = WAL")
                    db.execute("BEGIN IMMEDIATE")
                    if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                        # statement by statement in this one transaction (executescript
                        # would commit first): no other process sees a half-made store
                        for statement in filter(str.strip, _CREATE.split(";")):
                            db.execute(statement)
                        db.execute("COMMIT")
                    else:
                        db.execute("ROLLBACK")  # another process made it meanwhile
                    app, = db.execute("PRAGMA application_id").fetchone()
                    version, = db.execute("PRAGMA user_version").fetchone()
                if app != _APPLICATION_ID:
                    raise self._refuse("is an SQLite database of another program, not a "
                                       "results store")
                if version > SCHEMA:
                    raise self._refuse(f"was written by a newer transferability (store schema "
                                       f"{version}, this one reads {SCHEMA}); upgrade it")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StoreError(f"store: {self.path} stayed locked by another process "
                                 f"({exc})") from None
            raise self._refuse(f"is corrupt or unreadable ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- rows ------------------------------------------------------------------------
    def _record(self, row) -> Record:
        data = dict(zip(_COLUMNS, row, strict=True))
        for column in ("config", "result", "inputs"):
            data[column] = json.loads(data[column])
        data["value"] = data.pop("result")
        return Record(**data)

    def get(self, key: str) -> Record | None:
        with self._errors():
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE key = ?",
                                   (key,)).fetchone()
        return None if row is None else self._record(row)

    def find(self, prefix: str) -> list[Record]:
        """Records whose key starts with ``prefix`` (the CLI's short keys)."""
        with self._errors():
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE key LIKE ? "
                                    "ORDER BY finished", (prefix.replace("%", "") + "%",))
            return [self._record(r) for r in rows.fetchall()]

    def records(self, kind: str | None = None, study: str | None = None) -> list[Record]:
        """Every record (of ``kind``, of ``study``), oldest first."""
        where, args = [], []
        for column, value in (("kind", kind), ("study", study)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._errors():
            return [self._record(r) for r in
                    self._db.execute(sql + " ORDER BY finished, key", args).fetchall()]

    def __len__(self) -> int:
        with self._errors():
            return self._db.execute("SELECT count(*) FROM jobs").fetchone()[0]

    def __contains__(self, key: str) -> bool:
        with self._errors():
            return self._db.execute("SELECT 1 FROM jobs WHERE key = ?", (key,)).fetchone() \
                is not None

    def keys(self) -> set[str]:
        with self._errors():
            return {k for (k,) in self._db.execute("SELECT key FROM jobs")}

    # ---- writing -------------------------------------------------------------------
    def put(self, job: Job, value, artifact: bytes | None = None, *, started: float,
            finished: float, study: str = "", host: str | None = None) -> Record:
        """Record a finished ``job``: its artifact file first (atomically), then its row,
        under the store's write lock.

        A row already there (another process finished the same job) is kept, with its file.
        """
        self._writable()
        from .. import __version__
        with self._errors():
            self._db.execute("BEGIN IMMEDIATE")  # one writer from here to the row
            try:
                if self._db.execute("SELECT 1 FROM jobs WHERE key = ?", (job.key,)).fetchone():
                    self._db.execute("ROLLBACK")  # finished elsewhere: keep its row and file
                    return self.get(job.key)
                checksum = name = None
                if artifact is not None:
                    checksum = hashlib.sha256(artifact).hexdigest()
                    name = f"{job.key}.pt"
                    write_bytes(self.artifacts / name, artifact)
                row = (job.key, job.kind, job.label, study,
                       json.dumps(job.config, sort_keys=True), encode_value(value),
                       json.dumps({n: i.key for n, i in job.inputs.items()}),
                       get_job_kind(job.kind).version, name, checksum, started, finished,
                       finished - started, host or socket.gethostname(), __version__,
                       torch.__version__)
                self._db.execute(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(_COLUMNS))})", row)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return self.get(job.key)

    def delete(self, keys: Iterable[str]) -> int:
        """Drop the rows ``keys`` and their artifacts; the number of rows dropped."""
        keys = list(keys)
        if self._lazy:
            return 0
        with self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                files = [a for (a,) in self._db.execute(
                    f"SELECT artifact FROM jobs WHERE key IN ({', '.join('?' * len(keys))}) "
                    "AND artifact IS NOT NULL", keys)] if keys else []
                n = self._db.execute(f"DELETE FROM jobs WHERE key IN "
                                     f"({', '.join('?' * len(keys))})", keys).rowcount \
                    if keys else 0
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                (self.artifacts / name).unlink()
        return n

    def remove_orphans(self, min_age: float = 3600.0) -> int:
        """Delete artifact files (and temporary files) that no row refers to and that are
        older than ``min_age`` seconds (younger ones may belong to a job finishing now)."""
        if not self.artifacts.is_dir():
            return 0
        with self._errors():
            known = {a for (a,) in self._db.execute(
                "SELECT artifact FROM jobs WHERE artifact IS NOT NULL")}
        now, removed = time.time(), 0
        for path in self.artifacts.iterdir():
            if path.name not in known and path.is_file() and \
                    now - path.stat().st_mtime > min_age:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def stale(self) -> list[Record]:
        """Records whose kind's code has changed (or no longer exists)."""
        return [r for r in self.records() if not r.current]

    # ---- reading a job back --------------------------------------------------------
    def load(self, job: Job) -> Output | None:
        """The stored output of ``job``, or ``None`` when it must be computed: no row, or a
        row whose artifact is missing or damaged (then the row is dropped, with a warning,
        and the file moved aside)."""
        record = self.get(job.key)
        if record is None:
            return None
        if record.artifact is None:
            return Output(record.value)
        path = self.artifacts / record.artifact
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.warning("store: the artifact of %s (%s) is missing; recomputing it", job,
                        path)
            self.delete([job.key])
            return None
        try:
            if hashlib.sha256(data).hexdigest() != record.checksum:
                raise CheckpointError("checksum mismatch")
            artifact = load_artifact(get_job_kind(job.kind).artifact, data, path)
        except (CheckpointError, RuntimeError, ValueError) as exc:
            quarantine(path, str(exc).splitlines()[0])
            self.delete([job.key])
            return None
        return Output(record.value, artifact)


def artifact_bytes(kind: str | None, artifact) -> bytes | None:
    """A job's artifact as the bytes its file holds."""
    if kind is None or artifact is None:
        return None
    if kind == "model":
        from ..models import checkpoint_bytes
        return checkpoint_bytes(artifact)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in dict(artifact).items()}, buffer)
    return buffer.getvalue()


def load_artifact(kind: str | None, data: bytes, path: Path):
    """The artifact that :func:`artifact_bytes` wrote (tensors load with weights_only)."""
    if kind == "model":
        return load_checkpoint(path)
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@contextlib.contextmanager
def open_store(store: ResultStore | None, cache_dir=None) -> Iterator[ResultStore]:
    """``store`` as it is, or the default store of ``cache_dir`` opened for the block and
    closed after it (what every study function does with its ``store`` argument)."""
    if store is not None:
        yield store
        return
    with ResultStore.in_cache(cache_dir) as own:
        yield own
