"""Users' own data: ``.npz`` arrays and image folders (one sub-folder per class, read
lazily by :class:`ImageFolder`)."""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .._validation import check_int
from .dataset import ImageDataset

__all__ = ["load_npz", "load_image_folder", "ImageFolder", "list_image_folder",
           "to_unit_images", "load_cifar"]

log = logging.getLogger("transferability")

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def to_unit_images(x: np.ndarray, name: str = "x") -> torch.Tensor:
    """Convert N×H×W, N×C×H×W or N×H×W×C (C ≤ 4) arrays to float N×C×H×W in [0, 1].

    Integer pixels (``uint8``...) must be 0..255 and are divided by 255; float pixels must
    already lie in [0, 1] (no guessing from the values).
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected images N×H×W, N×C×H×W or N×H×W×C, got {x.shape}")
    integer = np.issubdtype(x.dtype, np.integer)
    if not (integer or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{name}: expected integer or float images, got dtype {x.dtype}")
    x = x.astype(np.float32) / (255.0 if integer else 1.0)
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{name}: contains {x.size - np.count_nonzero(np.isfinite(x))} NaN "
                         "or inf pixel value(s)")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name}: expected integer pixels in 0..255 or floats in [0, 1], got "
                         f"{'integers' if integer else 'floats'} in [{x.min():.4g}, "
                         f"{x.max():.4g}]{' (×255)' if integer else ''}")
    return torch.from_numpy(np.ascontiguousarray(x))


def load_npz(path: str | Path) -> ImageDataset:
    """An ``.npz`` with arrays ``x`` (images), ``y`` (integer labels 0..C−1) and optionally
    ``class_names``; no pickles allowed.

    Any problem with the file (unreadable, truncated, not an ``.npz``, pickled objects,
    arrays of the wrong rank or type) is a ``ValueError`` naming it.
    """
    path = Path(path)
    if "\0" in str(path) or not path.is_file():
        raise ValueError(f"path: no such file {str(path)!r}")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array")
        with f:
            files = list(f.files)
            arrays = {k: f[k] for k in ("x", "y", "class_names") if k in files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"path: cannot read {path} as an .npz archive of arrays x and y "
                         f"({type(exc).__name__}: {exc})") from None
    missing = {"x", "y"} - arrays.keys()
    if missing:
        raise ValueError(f"path: {path.name} needs arrays 'x' and 'y'; missing "
                         f"{sorted(missing)} (has {files})")
    names = arrays.get("class_names")
    try:
        if names is not None and names.ndim != 1:
            raise ValueError(f"class_names: expected a 1-D array, got shape {names.shape}")
        return ImageDataset(to_unit_images(arrays["x"]), arrays["y"], name=path.stem,
                            class_names=None if names is None else [str(n) for n in names])
    except ValueError as exc:
        raise ValueError(f"path: {path}: {exc}") from None


_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _open_image(file: Path, name: str = "root"):
    """An opened (not yet decoded) Pillow image, or a ``ValueError`` naming the file."""
    from PIL import Image

    try:
        return Image.open(file)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"{name}: cannot read image {file} ({type(exc).__name__}: {exc})"
                         ) from None


def _probe(file: Path) -> tuple[str, tuple[int, int]] | str:
    """``(mode, (width, height))`` of a readable image file, else the reason it is not."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with _open_image(file) as im:
                mode, size = im.mode, im.size
                im.verify()  # structure and checksums, without decoding the pixels
            return mode, size
        except ValueError as exc:
            return str(exc)
        except Exception as exc:  # verify() raises what the format's parser raises
            return f"root: cannot read image {file} ({type(exc).__name__}: {exc})"


def list_image_folder(root: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(class names, files, labels)`` of ``root/<class>/<image>``, sorted, without opening
    any file; a missing folder, one without class sub-folders or without images, is a
    ``ValueError`` naming it."""
    root = Path(root)
    if "\0" in str(root) or not root.is_dir():
        raise ValueError(f"root: no such folder {str(root)!r}")
    try:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        listed = []
        for c in classes:
            with os.scandir(root / c) as entries:
                listed.append(sorted(e.path for e in entries if e.is_file()
                                     and os.path.splitext(e.name)[1].lower() in _IMAGE_SUFFIXES))
    except OSError as exc:
        raise ValueError(f"root: cannot list {root} ({exc.strerror or exc})") from None
    if not classes:
        raise ValueError(f"root: {root} has no class sub-folders")
    if not any(listed):
        raise ValueError(f"root: no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) under "
                         f"{root}")
    for c, fs in zip(classes, listed, strict=True):
        if not fs:
            raise ValueError(f"root: class folder {root / c} has no readable image")
    files = np.array([f for fs in listed for f in fs], dtype=object)
    labels = np.repeat(np.arange(len(classes)), [len(fs) for fs in listed])
    return classes, files, labels


#: files whose headers decide a drawn folder's size and mode (evenly spaced in its listing)
SHAPE_SAMPLE = 64


class ImageFolder(torch.utils.data.Dataset):
    """``root/<class>/<image>`` read lazily, one image per item: ``uint8`` C×H×W pixels, as
    stored, and the class index (classes sorted by folder name). :func:`~transferability.
    data.stream` (so ``extract`` and ``predict``) turns them into float in [0, 1] per batch
    on the device; a quarter of float32's bytes cross processes and sit in host memory.

    The files are listed (no file opened), ``select`` picks those to use, and only these
    are checked (header and structure, not the pixels): a class folder without a readable
    image among them, or a mix of grayscale and colour images, is a ``ValueError`` naming
    the path. Unreadable files are skipped and counted (:attr:`skipped`, logged; their
    positions in the listing: :attr:`unreadable`), or refused with ``skip_corrupt=False``.
    Images keep their native size when all share one; otherwise, or when ``size`` is given,
    each is resized to ``size`` (default: the most common size) × the same.

    Args:
        root: the folder of class sub-folders.
        size: side of the square images returned (``None``: native, see above).
        mode: ``"L"`` or ``"RGB"`` to convert every image (``None``: the files' own).
        skip_corrupt: skip unreadable files (counted) instead of refusing the folder.
        select: ``select(labels) -> positions``: the files to use, given the labels of
            every file listed (``None``: all).
    """

    def __init__(self, root: str | Path, *, size: int | None = None, mode: str | None = None,
                 skip_corrupt: bool = True,
                 select: Callable[[np.ndarray], np.ndarray] | None = None):
        if size is not None:
            size = check_int(size, "size", maximum=4096)
        if mode not in (None, "L", "RGB"):
            raise ValueError(f"mode: expected 'L', 'RGB' or None, got {mode!r}")
        root = Path(root)
        classes, listed, labels = list_image_folder(root)
        # every draw of a folder decides size and mode alike: from the same evenly spaced
        # sample of its files' headers (beside the drawn ones), not from the draw alone
        sample = [] if select is None or (size is not None and mode is not None) else [
            (Path(f), r) for f in listed[::max(1, len(listed) // SHAPE_SAMPLE)]
            if not isinstance(r := _probe(Path(f)), str)]
        chosen = np.arange(len(listed)) if select is None else np.asarray(select(labels),
                                                                          dtype=np.int64)
        listed, labels = listed[chosen], labels[chosen]
        found = [_probe(Path(f)) for f in listed]  # one file at a time: inherent
        bad = np.array([isinstance(r, str) for r in found], dtype=bool)
        if bad.any() and not skip_corrupt:
            raise ValueError(found[int(np.argmax(bad))])
        empty = np.flatnonzero((np.bincount(labels, minlength=len(classes)) > 0)
                               & (np.bincount(labels[~bad], minlength=len(classes)) == 0))
        if len(empty):
            why = found[np.flatnonzero(labels == empty[0])[0]].removeprefix("root: ")
            raise ValueError(f"root: class folder {root / classes[empty[0]]} has no readable "
                             f"image ({why})")
        files = [Path(f) for f in listed[~bad]]
        found = [r for r in found if not isinstance(r, str)]
        modes: dict = {}
        for f, (m, _) in [*zip(files, found, strict=True), *sample]:
            modes.setdefault("L" if m in _GRAY_MODES else "RGB", f)
        if len(modes) > 1 and mode is None:
            raise ValueError(f"root: {root} mixes grayscale ({modes['L'].name}) and colour "
                             f"({modes['RGB'].name}) images; convert them, or choose a mode")
        if bad.any():
            log.warning("%s: skipped %d unreadable image(s), e.g. %s", root, int(bad.sum()),
                        listed[bad][0])
        sizes = [s for _, s in found] + [s for _, (_, s) in sample]
        shapes = [s for _, (_, s) in sample] or sizes  # the folder's, not the draw's
        common = Counter(shapes).most_common(1)[0][0] if shapes else (1, 1)
        if size is None and len(set(sizes)) > 1:
            size = max(common)
            log.info("%s: images of %d sizes, all resized to %d×%d", root, len(set(sizes)),
                     size, size)
        self.root, self.files, self.class_names = root, files, classes
        self.labels = labels[~bad]
        self.mode = mode or next(iter(modes), "RGB")
        self.size, self.skipped, self.unreadable = size, int(bad.sum()), chosen[bad]
        self.image_size = (size, size) if size is not None else common[::-1]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        file = self.files[i]
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_image(file) as im:
                try:
                    im = im.convert(self.mode)
                    if self.size is not None and im.size != (self.size, self.size):
                        im = im.resize((self.size, self.size), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.uint8)
                except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
                    raise ValueError(f"root: cannot read image {file} ({type(exc).__name__}: "
                                     f"{exc})") from None
        x = torch.from_numpy(a.copy())
        return (x[None] if x.ndim == 2 else x.permute(2, 0, 1)), int(self.labels[i])

    def load(self, name: str | None = None) -> ImageDataset:
        """Every image, read in order, as one :class:`ImageDataset` (named ``name``, default
        the folder's)."""
        x = torch.empty((len(self), 1 if self.mode == "L" else 3, *self.image_size))
        for i in range(len(self)):  # Pillow decodes one file at a time
            x[i] = self[i][0].float().div_(255)
        return ImageDataset(x, self.labels, name=name or self.root.name,
                            class_names=self.class_names)


def load_image_folder(root: str | Path, *, size: int | None = None,
                      mode: str | None = None) -> ImageDataset:
    """``root/<class>/<image>`` loaded at once, as ``imagefolder:ROOT`` reads one folder:
    classes sorted by folder name, native size and colour unless ``size`` (at most 1024)
    or ``mode`` (``"L"``, ``"RGB"``) is given; any unreadable image, or one over Pillow's
    ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb), is a ``ValueError`` naming the file
    (:class:`ImageFolder` skips them)."""
    if size is not None:
        size = check_int(size, "size", maximum=1024)
    return ImageFolder(root, size=size, mode=mode, skip_corrupt=False).load()


#: ``cifar10:`` / ``cifar100:`` folders as torchvision downloads them: the folder name, the
#: files of each split, the metadata file, and the label key and class-name key by labels.
_CIFAR = {
    "cifar10": ("cifar-10-batches-py",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                "batches.meta", {"fine": ("labels", "label_names")}),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta",
                 {"fine": ("fine_labels", "fine_label_names"),
                  "coarse": ("coarse_labels", "coarse_label_names")}),
}


def _unpickle(path: Path, name: str) -> dict:
    """A CIFAR pickle: a dict of plain values and NumPy arrays (keys as ``str``), read by
    the restricted unpickler (``latin1``, as Python 2 wrote them); anything else in the
    file is a ``ValueError`` naming it."""
    from .sources import _ArrayOnlyUnpickler

    try:
        with open(path, "rb") as f:
            d = _ArrayOnlyUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise ValueError(f"{name}: {path.parent} has no file {path.name!r}") from None
    except Exception as exc:  # any failure to parse the file
        raise ValueError(f"{name}: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{name}: {path} holds a {type(d).__name__}, not a CIFAR dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def load_cifar(root: str | Path, split: str, *, variant: str = "cifar10", labels: str = "fine",
               name: str = "data") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ``split`` (``"train"``, ``"test"`` or ``"all"``: train then test) of the
    ``cifar-10-batches-py`` / ``cifar-100-python`` folder ``root`` (or the folder holding
    it), in the files' own order: ``uint8`` images N×3×32×32, int64 labels (CIFAR-100:
    ``labels="fine"`` or ``"coarse"``) and class names. Only the split's files are read,
    with an unpickler that admits plain values and NumPy arrays only."""
    folder, files, meta, keys = _CIFAR[variant]
    root = Path(root)
    root = root / folder if (root / folder).is_dir() else root
    if labels not in keys:
        raise ValueError(f"{name}: labels expects {' or '.join(keys)}, got {labels!r}")
    label_key, names_key = keys[labels]
    names = _unpickle(root / meta, name).get(names_key)
    if not isinstance(names, list) or not names:
        raise ValueError(f"{name}: {root / meta} has no list {names_key!r}")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    xs, ys = [], []
    for file in files["train"] * (split != "test") + files["test"] * (split != "train"):
        d = _unpickle(root / file, name)
        x, y = d.get("data"), np.asarray(d.get(label_key, []))
        ok = (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.shape[1:] == (3072,)
              and y.shape == x.shape[:1] and np.issubdtype(y.dtype, np.integer))
        if not ok or (len(y) and not 0 <= y.min() <= y.max() < len(names)):
            raise ValueError(f"{name}: {root / file} is not a CIFAR batch (uint8 'data' N×3072 "
                             f"and {len(names)}-class {label_key!r})")
        xs.append(x.reshape(-1, 3, 32, 32))
        ys.append(y.astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys), names
