"""``ImageDataset``: the one in-memory dataset type (float images in [0,1], int64 labels)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .._validation import as_labels, check_images

__all__ = ["ImageDataset", "as_tensors"]


class ImageDataset(Dataset):
    """Images N×C×H×W (float32 in [0, 1]) with labels 0..C−1 and class names.

    A plain torch ``Dataset`` (``ds[i] -> (x, y)``) that also exposes the tensors ``x`` and
    ``y`` directly, so batched code never loops over samples.
    """

    def __init__(self, x: torch.Tensor, y, *, name: str = "dataset",
                 class_names: Sequence[str] | None = None):
        x = check_images(torch.as_tensor(x, dtype=torch.float32), "x")
        labels = as_labels(y, "y", min_classes=1, contiguous=False)
        if len(labels) != len(x):
            raise ValueError(f"y: expected {len(x)} labels (one per image), got {len(labels)}")
        self.x = x.contiguous()
        self.y = torch.from_numpy(labels)
        self.name = name
        n_classes = int(labels.max()) + 1
        names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        if len(names) < n_classes:
            raise ValueError(f"class_names: expected at least {n_classes} names, got {len(names)}")
        self.class_names = names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one image, C×H×W."""
        return tuple(self.x.shape[1:])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y.numpy(), minlength=self.num_classes)

    def subset(self, index, *, name: str | None = None) -> ImageDataset:
        """The samples at ``index`` (indices or a boolean mask), same classes."""
        index = torch.as_tensor(index)
        return ImageDataset(self.x[index], self.y[index], name=name or self.name,
                            class_names=self.class_names)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __repr__(self) -> str:
        return (f"ImageDataset(name={self.name!r}, n={len(self)}, shape={self.shape}, "
                f"classes={self.num_classes})")


def as_tensors(data, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` tensors from an :class:`ImageDataset`, an ``(x, y)`` pair or any torch
    ``Dataset`` of ``(image, label)`` items (materialised once, in order)."""
    if isinstance(data, ImageDataset):
        return data.x, data.y
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
        check_images(x, f"{name}[0]")
        y = torch.as_tensor(y)
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{name}: expected {len(x)} labels in a 1-D tensor, "
                             f"got shape {tuple(y.shape)}")
        return x, y.long()
    if isinstance(data, Dataset):
        from torch.utils.data import DataLoader

        xs, ys = zip(*DataLoader(data, batch_size=256, shuffle=False), strict=True)
        return as_tensors((torch.cat(xs).float(), torch.cat(ys)), name)
    raise ValueError(f"{name}: expected an ImageDataset, an (x, y) pair of tensors or a torch "
                     f"Dataset, got {type(data).__name__}")
