"""Users' own data: ``.npz`` arrays and image folders (one sub-folder per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

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
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name}: expected numeric images, got dtype {x.dtype}")
    integer = np.issubdtype(x.dtype, np.integer)
    x = x.astype(np.float32) / (255.0 if integer else 1.0)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name}: expected integer pixels in 0..255 or floats in [0, 1], got "
                         f"{'integers' if integer else 'floats'} in [{x.min():.4g}, "
                         f"{x.max():.4g}]{' (×255)' if integer else ''}")
    return torch.from_numpy(np.ascontiguousarray(x))


def load_npz(path: str | Path) -> ImageDataset:
    """An ``.npz`` with arrays ``x`` (images) and ``y`` (labels 0..C−1); no pickles allowed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {path}")
    with np.load(path, allow_pickle=False) as f:
        missing = {"x", "y"} - set(f.files)
        if missing:
            raise ValueError(f"path: {path.name} needs arrays 'x' and 'y'; missing "
                             f"{sorted(missing)} (has {f.files})")
        x, y = f["x"], f["y"]
        names = [str(n) for n in f["class_names"]] if "class_names" in f.files else None
    return ImageDataset(to_unit_images(x), y, name=path.stem, class_names=names)


def load_image_folder(root: str | Path, *, size: int = 28, grayscale: bool = True) -> ImageDataset:
    """``root/<class>/<image>``: classes sorted by folder name, images resized to size×size."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root: no such folder {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"root: {root} has no class sub-folders")
    xs, ys = [], []
    mode = "L" if grayscale else "RGB"
    for c, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        for f in files:
            with Image.open(f) as im:
                xs.append(np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR)))
            ys.append(c)
    if not xs:
        raise ValueError(f"root: no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) under {root}")
    x = np.stack(xs).astype(np.float32) / 255.0
    return ImageDataset(to_unit_images(x), np.asarray(ys), name=root.name, class_names=classes)
