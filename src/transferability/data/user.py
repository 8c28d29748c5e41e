"""Users' own data: ``.npz`` arrays and image folders (one sub-folder per class)."""

from __future__ import annotations

import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .._validation import check_int
from .dataset import ImageDataset

__all__ = ["load_npz", "load_image_folder", "to_unit_images"]

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


def _read_image(file: Path, mode: str, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as im:
            return np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR))
    except (OSError, SyntaxError, ValueError, EOFError, struct.error,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"root: cannot read image {file} ({type(exc).__name__}: {exc})"
                         ) from None


def load_image_folder(root: str | Path, *, size: int = 28, grayscale: bool = True) -> ImageDataset:
    """``root/<class>/<image>``: classes sorted by folder name, images resized to size×size
    (``size`` at most 1024).

    A corrupt or truncated image, or one over Pillow's ``Image.MAX_IMAGE_PIXELS``
    (a decompression bomb), is a ``ValueError`` naming the file.
    """
    from PIL import Image

    size = check_int(size, "size", maximum=1024)
    root = Path(root)
    if "\0" in str(root) or not root.is_dir():
        raise ValueError(f"root: no such folder {str(root)!r}")
    try:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        files = [sorted(p for p in (root / c).iterdir()
                        if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()) for c in classes]
    except OSError as exc:
        raise ValueError(f"root: cannot list {root} ({exc.strerror or exc})") from None
    if not classes:
        raise ValueError(f"root: {root} has no class sub-folders")
    mode = "L" if grayscale else "RGB"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        xs = [_read_image(f, mode, size) for fs in files for f in fs]
    if not xs:
        raise ValueError(f"root: no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) under {root}")
    ys = np.repeat(np.arange(len(classes)), [len(fs) for fs in files])
    x = np.stack(xs).astype(np.float32) / 255.0
    return ImageDataset(to_unit_images(x), ys, name=root.name, class_names=classes)
