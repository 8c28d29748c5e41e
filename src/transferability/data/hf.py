"""Hugging Face ``datasets`` saved with ``save_to_disk``: an image column and a label column.

The columns are detected from the features (an ``Image`` feature; a ``ClassLabel``
feature, else a column named ``label``/``labels``/``fine_label``) or given by name. A
``DatasetDict`` keeps its own splits (``train`` and ``test``, ``validation`` or ``val``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset

__all__ = ["load_hf_dataset"]

_LABEL_NAMES = ("label", "labels", "fine_label", "target")


def _columns(ds, path: Path, image: str | None, label: str | None) -> tuple[str, str, list[str]]:
    import datasets

    features = ds.features
    if image is None:
        found = [k for k, f in features.items() if isinstance(f, datasets.Image)]
        if len(found) != 1:
            raise ValueError(f"data: {path}: expected one Image column, found {found or 'none'} "
                             f"among {list(features)}; name it with ?image=COLUMN")
        image = found[0]
    if label is None:
        found = [k for k, f in features.items() if isinstance(f, datasets.ClassLabel)]
        found = found or [k for k in _LABEL_NAMES if k in features]
        if not found:
            raise ValueError(f"data: {path}: no label column among {list(features)}; name it "
                             "with ?label=COLUMN")
        label = found[0]
    for key, col in (("image", image), ("label", label)):
        if col not in features:
            raise ValueError(f"data: {path}: no {key} column {col!r}; columns: {list(features)}")
    names = getattr(features[label], "names", None)
    return image, label, list(names) if names else []


def _to_dataset(ds, path: Path, name: str, image: str, label: str,
                class_names: list[str], mode: str | None) -> ImageDataset:
    y = np.asarray(list(ds[label]), dtype=np.int64)
    k = len(class_names) or (int(y.max()) + 1 if len(y) else 0)
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise ValueError(f"data: {path}: label column {label!r} has {int(bad.sum())} value(s) "
                         f"outside 0..{k - 1} (e.g. {int(y[bad][0])})")
    rows = []
    for im in ds[image]:  # Pillow images, decoded one at a time
        rows.append(np.asarray(im.convert(mode)))
    shapes = {r.shape for r in rows}
    if len(shapes) != 1:
        raise ValueError(f"data: {path}: images of {len(shapes)} different sizes; resize them "
                         "first (imagefolder: resizes)")
    x = torch.from_numpy(np.stack(rows)).float().div_(255)
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return ImageDataset(x, y, name=name, class_names=class_names or None)


def load_hf_dataset(path: str | Path, image: str | None = None,
                    label: str | None = None) -> dict[str, ImageDataset]:
    """``{"train": ..., "test": ...}`` for a saved ``DatasetDict`` with its own split, else
    ``{"all": ...}``. Images keep their size; grayscale stays one channel when every image
    is grayscale, else all are RGB."""
    path = Path(path)
    try:
        import datasets
    except Exception:
        raise ValueError(f"data: hf:{path} needs the datasets package; install it with "
                         "pip install 'transferability[hf]'") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise ValueError(f"data: {path} is not a dataset saved with save_to_disk "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if isinstance(loaded, datasets.DatasetDict):
        test = next((s for s in ("test", "validation", "val") if s in loaded), None)
        if "train" not in loaded or test is None:
            raise ValueError(f"data: {path}: a DatasetDict needs a train split and a test, "
                             f"validation or val split; it has {list(loaded)}")
        parts = {"train": loaded["train"], "test": loaded[test]}
    else:
        parts = {"all": loaded}
    first = next(iter(parts.values()))
    image, label, names = _columns(first, path, image, label)
    modes = {im.mode for part in parts.values() for im in part[image]}
    mode = "L" if modes <= {"1", "L", "LA", "I", "I;16", "F"} else "RGB"
    return {split: _to_dataset(part, path, f"{path.name}/{split}", image, label, names, mode)
            for split, part in parts.items()}
