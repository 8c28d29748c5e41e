"""Datasets described by plain dicts (the YAML of zoo specs and the CLI's ``--target``).

Forms::

    "mnist"                                          # a name or a .npz / folder path
    {dataset: fonts, options: {n_per_class: 300}}    # generator options
    {dataset: mnist, classes: [0, 1, 2]}             # a label subset
    {dataset: mnist, relabel: [0, 0, 1, 1, ...]}     # merged classes
    {mixture: [fonts, animals], k: 5}                # Liang et al.'s mixture source
    ... any of them with n_per_class: 300            # balanced n samples per class
"""

from __future__ import annotations

from collections.abc import Mapping

from .dataset import ImageDataset
from .registry import load_dataset
from .tasks import mixture, per_class, relabel, select_classes

__all__ = ["dataset_from_spec"]

_KEYS = {"dataset", "mixture", "k", "options", "classes", "relabel", "n_per_class", "seed"}


def dataset_from_spec(spec: str | Mapping, split: str = "train", *, seed: int = 0) -> ImageDataset:
    """Build the ``split`` of the task described by ``spec`` (see the module docstring)."""
    if isinstance(spec, str):
        return load_dataset(spec, split, seed=seed)
    if not isinstance(spec, Mapping):
        raise ValueError(f"spec: expected a dataset name or a mapping, got {type(spec).__name__}")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"spec: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    seed = int(spec.get("seed", seed))
    if "mixture" in spec:
        parts = spec["mixture"]
        if not (isinstance(parts, (list, tuple)) and len(parts) == 2) or "k" not in spec:
            raise ValueError("spec: a mixture needs `mixture: [first, second]` and `k`")
        first, second = (dataset_from_spec(p, split, seed=seed) for p in parts)
        ds = mixture(first, second, int(spec["k"]))
    elif "dataset" in spec:
        ds = load_dataset(spec["dataset"], split, seed=seed, **dict(spec.get("options", {})))
    else:
        raise ValueError("spec: expected a `dataset` or a `mixture` key")
    if "classes" in spec:
        ds = select_classes(ds, spec["classes"])
    if "relabel" in spec:
        ds = relabel(ds, spec["relabel"])
    if "n_per_class" in spec and split == "train":
        ds = per_class(ds, int(spec["n_per_class"]), seed=seed)
    return ds
