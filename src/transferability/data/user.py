"""Users' own data: ``.npz`` arrays and image folders (one sub-folder per class, read
lazily by :class:`ImageFolder`)."""

from __future__ import annotations

import logging
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .._validation import check_int
from .dataset import ImageDataset

__all__ = ["load_npz", "load_image_folder", "ImageFolder", "to_unit_images"]

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


class ImageFolder(torch.utils.data.Dataset):
    """``root/<class>/<image>`` read lazily, one image per item: ``uint8`` C×H×W pixels, as
    stored, and the class index (classes sorted by folder name). :func:`~transferability.
    data.stream` (so ``extract`` and ``predict``) turns them into float in [0, 1] per batch
    on the device; a quarter of float32's bytes cross processes and sit in host memory.

    Every file is checked when the dataset is made (header and structure, not the pixels):
    an empty folder, a class folder without a readable image, or a mix of grayscale and
    colour images is a ``ValueError`` naming the path. Unreadable files are skipped and
    counted (:attr:`skipped`, logged), or refused with ``skip_corrupt=False``. Images keep
    their native size when all share one; otherwise, or when ``size`` is given, each is
    resized to ``size`` (default: the most common size) × the same.

    Args:
        root: the folder of class sub-folders.
        size: side of the square images returned (``None``: native, see above).
        mode: ``"L"`` or ``"RGB"`` to convert every image (``None``: the files' own).
        skip_corrupt: skip unreadable files (counted) instead of refusing the folder.
    """

    def __init__(self, root: str | Path, *, size: int | None = None, mode: str | None = None,
                 skip_corrupt: bool = True):
        if size is not None:
            size = check_int(size, "size", maximum=4096)
        if mode not in (None, "L", "RGB"):
            raise ValueError(f"mode: expected 'L', 'RGB' or None, got {mode!r}")
        root = Path(root)
        if "\0" in str(root) or not root.is_dir():
            raise ValueError(f"root: no such folder {str(root)!r}")
        try:
            classes = sorted(p.name for p in root.iterdir() if p.is_dir())
            listed = [sorted(p for p in (root / c).iterdir()
                             if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
                      for c in classes]
        except OSError as exc:
            raise ValueError(f"root: cannot list {root} ({exc.strerror or exc})") from None
        if not classes:
            raise ValueError(f"root: {root} has no class sub-folders")
        if not any(listed):
            raise ValueError(f"root: no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) under "
                             f"{root}")
        files, labels, modes, sizes, bad = [], [], {}, [], []
        for c, fs in enumerate(listed):
            n = 0
            for f in fs:
                found = _probe(f)
                if isinstance(found, str):
                    if not skip_corrupt:
                        raise ValueError(found)
                    bad.append(f)
                    continue
                files.append(f)
                labels.append(c)
                modes.setdefault("L" if found[0] in _GRAY_MODES else "RGB", f)
                sizes.append(found[1])
                n += 1
            if not n:
                raise ValueError(f"root: class folder {root / classes[c]} has no readable image")
        if len(modes) > 1 and mode is None:
            raise ValueError(f"root: {root} mixes grayscale ({modes['L'].name}) and colour "
                             f"({modes['RGB'].name}) images; convert them, or choose a mode")
        if bad:
            log.warning("%s: skipped %d unreadable image(s), e.g. %s", root, len(bad), bad[0])
        common = Counter(sizes).most_common(1)[0][0]
        if size is None and len(set(sizes)) > 1:
            size = max(common)
            log.info("%s: images of %d sizes, all resized to %d×%d", root, len(set(sizes)),
                     size, size)
        self.root, self.files, self.class_names = root, files, classes
        self.labels = np.asarray(labels, dtype=np.int64)
        self.mode = mode or next(iter(modes))
        self.size, self.skipped = size, len(bad)
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

    def load(self) -> ImageDataset:
        """Every image, read in order, as one :class:`ImageDataset`."""
        x = torch.empty((len(self), 1 if self.mode == "L" else 3, *self.image_size))
        for i in range(len(self)):  # Pillow decodes one file at a time
            x[i] = self[i][0].float().div_(255)
        return ImageDataset(x, self.labels, name=self.root.name, class_names=self.class_names)


def load_image_folder(root: str | Path, *, size: int = 28, grayscale: bool = True) -> ImageDataset:
    """``root/<class>/<image>`` loaded at once: classes sorted by folder name, images resized
    to size×size (``size`` at most 1024) in grayscale (or RGB); any unreadable image, or one
    over Pillow's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb), is a ``ValueError``
    naming the file (:class:`ImageFolder` reads lazily, at native size, skipping them)."""
    size = check_int(size, "size", maximum=1024)
    return ImageFolder(root, size=size, mode="L" if grayscale else "RGB",
                       skip_corrupt=False).load()
