"""Task builders: carve target and source tasks out of datasets.

``select_classes`` (a label subset), ``relabel`` (merge/rename classes), ``per_class``
(n samples per class, few-shot), ``sample`` (a seeded class-stratified sample) and
``mixture`` (Liang et al. 2021's mixture sources: the first k classes from one dataset,
the other 10−k from another). The draws are functions of the labels alone
(``per_class_positions``, ``sample_positions``), so image folders select before reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .._validation import check_int, check_seed
from .dataset import ImageDataset

__all__ = ["select_classes", "relabel", "per_class", "mixture", "check_per_class", "sample",
           "per_class_positions", "sample_positions"]


def _class_ids(values, name: str) -> list[int]:
    """A list, tuple, array or tensor of integer class ids, as Python ints."""
    if isinstance(values, np.ndarray | torch.Tensor):
        values = values.tolist()
    if not isinstance(values, list | tuple | range):
        raise ValueError(f"{name}: expected a list of integer class ids, got {values!r}")
    return [check_int(v, name, minimum=0) for v in values]


def select_classes(ds: ImageDataset, classes: Sequence[int]) -> ImageDataset:
    """Keep only ``classes`` and renumber them 0..k−1 in the order given."""
    classes = _class_ids(classes, "classes")
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes: expected distinct class ids, got {classes}")
    bad = [c for c in classes if not 0 <= c < ds.num_classes]
    if bad:
        raise ValueError(f"classes: {bad} not in 0..{ds.num_classes - 1} of {ds.name!r}")
    lut = torch.full((ds.num_classes,), -1, dtype=torch.long)
    lut[classes] = torch.arange(len(classes))
    new = lut[ds.y]
    keep = new >= 0
    return ImageDataset(ds.x[keep], new[keep], name=f"{ds.name}[{','.join(map(str, classes))}]",
                        class_names=[ds.class_names[c] for c in classes])


def relabel(ds: ImageDataset, mapping: Mapping[int, int] | Sequence[int],
            class_names: Sequence[str] | None = None) -> ImageDataset:
    """Map old class ids to new ones (merging classes that share a new id).

    ``mapping`` is a dict ``old -> new`` or a sequence indexed by old id; old classes
    missing from a dict are dropped. New ids must be 0..K−1 and all used.
    """
    if isinstance(mapping, Mapping):
        old = _class_ids(list(mapping), "mapping")
        new = _class_ids(list(mapping.values()), "mapping")
        lut = torch.full((ds.num_classes,), -1, dtype=torch.long)
        bad = [o for o in old if o >= ds.num_classes]
        if bad:
            raise ValueError(f"mapping: old class(es) {bad} not in 0..{ds.num_classes - 1}")
        lut[old] = torch.as_tensor(new, dtype=torch.long)
    else:
        new = _class_ids(mapping, "mapping")
        if len(new) != ds.num_classes:
            raise ValueError(f"mapping: expected {ds.num_classes} entries, got {len(new)}")
        lut = torch.as_tensor(new, dtype=torch.long)
    used = torch.unique(lut[lut >= 0])
    if len(used) == 0 or not torch.equal(used, torch.arange(len(used))):
        raise ValueError(f"mapping: new ids must be 0..K-1 with none skipped, got {used.tolist()}")
    new = lut[ds.y]
    keep = new >= 0
    if class_names is None:
        class_names = ["+".join(ds.class_names[o] for o in range(ds.num_classes) if lut[o] == k)
                       for k in range(len(used))]
    return ImageDataset(ds.x[keep], new[keep], name=f"{ds.name}:relabel", class_names=class_names)


def _check_counts(n: int, name: str, counts: np.ndarray, class_names, what: str) -> None:
    """``n`` per class against ``counts`` (the classes of ``what``)."""
    if n > counts.min():
        most, c = int(counts.min()), int(counts.argmin())
        label = f"{c}" if class_names[c] == str(c) else f"{c} ({class_names[c]})"
        raise ValueError(f"{name}: {n} per class is more than {what!r} has: its class "
                         f"{label} has {most}; the largest value that works is {most}")


def check_per_class(n, name: str, *datasets: ImageDataset) -> int:
    """The one rule for "more per class than the data has", used by every ``n_per_class``
    and ``--n-per-class``: ``n`` may be at most the size of the smallest class of every
    dataset; otherwise a ``ValueError`` names ``name`` and the largest value that works."""
    n = check_int(n, name)
    for ds in datasets:
        _check_counts(n, name, ds.class_counts(), ds.class_names, ds.name)
    return n


def per_class_positions(labels: np.ndarray, n: int, seed: int = 0, *, num_classes: int,
                        class_names=None, name: str = "n", what: str = "data") -> np.ndarray:
    """Sorted positions of exactly ``n`` random samples of every class of ``labels``
    (checked as :func:`check_per_class` does), deterministic by ``seed``."""
    n, seed = check_int(n, name), check_seed(seed)
    counts = np.bincount(labels, minlength=num_classes)
    _check_counts(n, name, counts, class_names or [str(c) for c in range(num_classes)], what)
    rng = np.random.default_rng(seed)
    # one permutation, then the first n positions of each class: vectorised stratified draw
    perm = rng.permutation(len(labels))
    order = perm[np.argsort(labels[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.sort(order[(starts[:, None] + np.arange(n)[None, :]).ravel()])


def per_class(ds: ImageDataset, n: int, seed: int = 0) -> ImageDataset:
    """Exactly ``n`` random samples of every class (few-shot), deterministic by ``seed``."""
    chosen = per_class_positions(ds.y.numpy(), n, seed, num_classes=ds.num_classes,
                                 class_names=ds.class_names, what=ds.name)
    return ds.subset(torch.from_numpy(chosen), name=f"{ds.name}:{n}-shot")


def sample_positions(labels: np.ndarray, n: int, seed: int = 0, *,
                     name: str = "n_examples", what: str = "the data") -> np.ndarray:
    """Sorted positions of a seeded, class-stratified sample of ``n`` of ``labels``: each
    class gets its share of ``n`` (Webster's rounding: the k-th sample of a class of size
    m comes at (k + ½) / m; ties drawn), its samples drawn at random."""
    labels = np.asarray(labels, dtype=np.int64)
    n, seed = check_int(n, name), check_seed(seed)
    if n > len(labels):
        raise ValueError(f"{name}: {what} has {len(labels)} images, got {n}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    order = perm[np.argsort(labels[perm], kind="stable")]  # class-major, random within
    counts = np.bincount(labels)
    rank = np.empty(len(labels), dtype=np.int64)  # each sample's place in its class
    rank[order] = np.arange(len(labels)) - (np.cumsum(counts) - counts)[labels[order]]
    key = (rank + 0.5) / counts[labels]
    return np.sort(np.lexsort((rng.random(len(labels)), key))[:n])


def sample(ds: ImageDataset, n: int, seed: int = 0) -> ImageDataset:
    """A seeded, class-stratified sample of ``n`` of ``ds`` (:func:`sample_positions`)."""
    chosen = sample_positions(ds.y.numpy(), n, seed, what=repr(ds.name))
    return ds.subset(torch.from_numpy(chosen), name=ds.name)


def mixture(first: ImageDataset, second: ImageDataset, k: int,
            n_per_class: int | None = None, seed: int = 0) -> ImageDataset:
    """A 10-class source task: classes 0..k−1 from ``first``, classes k..9 from ``second``.

    Class c keeps its id and comes from ``first`` when c < k, else from ``second``
    (Liang et al. 2021, animals/vehicles mixtures). ``n_per_class`` (``None``: all)
    balances it.
    """
    num = first.num_classes
    if second.num_classes != num:
        raise ValueError(f"second: expected {num} classes like first, got {second.num_classes}")
    k, seed = check_int(k, "k", minimum=0, maximum=num), check_seed(seed)
    if n_per_class is not None:
        n_per_class = check_int(n_per_class, "n_per_class")
    parts_x, parts_y, names = [], [], []
    for c in range(num):
        src = first if c < k else second
        mask = src.y == c
        parts_x.append(src.x[mask])
        parts_y.append(torch.full((int(mask.sum()),), c, dtype=torch.long))
        names.append(f"{src.name}:{src.class_names[c]}")
    ds = ImageDataset(torch.cat(parts_x), torch.cat(parts_y),
                      name=f"mixture({first.name},{second.name},k={k})", class_names=names)
    return ds if n_per_class is None else per_class(ds, n_per_class, seed)
