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

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .._validation import check_int, check_seed
from .dataset import ImageDataset
from .registry import (
    Splitter,
    _user_path,
    dataset_info,
    list_datasets,
    load_dataset,
    parse_data_argument,
)
from .sources import MAX_PER_CLASS
from .tasks import (
    _class_ids,
    check_per_class,
    mixture,
    relabel,
    sample,
    select_classes,
)
from .tasks import per_class as draw_per_class

__all__ = ["dataset_from_spec", "check_dataset_spec", "DataSummary", "describe_dataset"]

_KEYS = {"dataset", "mixture", "k", "options", "classes", "relabel", "n_per_class", "seed"}


def _check_source(value, name: str) -> None:
    """Check that ``value`` names a bundled dataset, an existing .npz file or folder, or is a
    valid data argument (``imagefolder:``, ``npz:``, ``hf:``, ``cifar10:``, ``cifar100:``)."""
    try:
        if parse_data_argument(value) is not None:
            return
    except ValueError as exc:
        raise ValueError(f"{name}: {str(exc).removeprefix('data: ')}") from None
    if not (isinstance(value, str) and value in list_datasets()) and _user_path(value) is None:
        raise ValueError(f"{name}: {value!r} is neither a dataset ({', '.join(list_datasets())}), "
                         "an existing .npz file or image folder, nor imagefolder:PATH, "
                         "npz:PATH, hf:PATH, cifar10:PATH or cifar100:PATH")


def _check_spec(spec: Mapping, name: str = "spec") -> None:
    """Check every value of a spec mapping before anything is loaded."""
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {sorted(map(str, unknown))}; "
                         f"allowed: {sorted(_KEYS)}")
    if ("mixture" in spec) == ("dataset" in spec):
        raise ValueError(f"{name}: expected exactly one of the keys `dataset` and `mixture`")
    if "mixture" in spec:
        parts = spec["mixture"]
        if not (isinstance(parts, list | tuple) and len(parts) == 2) or "k" not in spec:
            raise ValueError(f"{name}: a mixture needs `mixture: [first, second]` and `k`")
        check_int(spec["k"], f"{name}.k", minimum=0)
        if "options" in spec:
            raise ValueError(f"{name}.options: give options to the mixture's parts")
    elif "k" in spec:
        raise ValueError(f"{name}.k: applies only to a `mixture`")
    options = spec.get("options", {})
    if not isinstance(options, Mapping) or not all(isinstance(o, str) for o in options):
        raise ValueError(f"{name}.options: expected a mapping of option names to values, "
                         f"got {options!r}")
    if "classes" in spec:
        _class_ids(spec["classes"], f"{name}.classes")
    if "relabel" in spec:
        r = spec["relabel"]
        for ids in (list(r), list(r.values())) if isinstance(r, Mapping) else (r,):
            _class_ids(ids, f"{name}.relabel")
    if "n_per_class" in spec:
        check_int(spec["n_per_class"], f"{name}.n_per_class", maximum=MAX_PER_CLASS)
    if "seed" in spec:
        check_seed(spec["seed"], f"{name}.seed")


def check_dataset_spec(spec, name: str = "spec") -> None:
    """Check a dataset spec (see the module docstring) without loading anything: its keys
    and values, and that every dataset it names exists. ``name`` prefixes the errors
    (a zoo spec checks every model's ``data`` this way before training any)."""
    if isinstance(spec, str | os.PathLike):
        _check_source(spec, name)
        return
    if not isinstance(spec, Mapping):
        raise ValueError(f"{name}: expected a dataset name or a mapping, got "
                         f"{type(spec).__name__}")
    _check_spec(spec, name)
    if "mixture" in spec:
        for i, part in enumerate(spec["mixture"]):
            check_dataset_spec(part, f"{name}.mixture[{i}]")
    else:
        _check_source(spec["dataset"], f"{name}.dataset")
        options = dict(spec.get("options", {}))
        if options and spec["dataset"] not in list_datasets():
            raise ValueError(f"{name}.options: {sorted(options)} do not apply to user data "
                             f"{str(spec['dataset'])!r}; it takes none")
        if options:
            accepted = set(inspect.signature(dataset_info(spec["dataset"]).loader).parameters)
            unknown = sorted(set(options) - accepted)
            if unknown:
                raise ValueError(f"{name}.options: {unknown} do not apply to dataset "
                                 f"{spec['dataset']!r}; it takes {sorted(accepted) or 'none'}")
            if "n_per_class" in options:
                check_int(options["n_per_class"], f"{name}.options.n_per_class",
                          maximum=MAX_PER_CLASS)


def dataset_from_spec(spec: str | os.PathLike | Mapping, split: str = "train", *,
                      seed: int = 0, splitter: Splitter | None = None,
                      n_examples: int | None = None,
                      per_class: int | None = None) -> ImageDataset:
    """Build the ``split`` of the task described by ``spec`` (see the module docstring).

    Every value is checked (a ``ValueError`` naming the key) before anything is loaded.
    ``n_per_class`` is at most ``sources.MAX_PER_CLASS`` (20,000) and applies to the
    train split only. ``splitter`` splits users' data without a split of their own;
    ``n_examples`` keeps that many of the task, the first or a seeded class-stratified
    sample (:func:`~transferability.data.load_dataset`; a plain name or data argument is
    read only as far as they need); ``per_class`` keeps that many of every class of the
    split, drawn before reading where the data can be (as ``n_examples``).
    """
    seed = check_seed(seed)
    if isinstance(spec, str | os.PathLike):
        return load_dataset(spec, split, seed=seed, splitter=splitter, n_examples=n_examples,
                            per_class=per_class)
    if not isinstance(spec, Mapping):
        raise ValueError(f"spec: expected a dataset name or a mapping, got {type(spec).__name__}")
    _check_spec(spec)
    seed = check_seed(spec.get("seed", seed), "spec.seed")
    if "mixture" in spec:
        first, second = (dataset_from_spec(p, split, seed=seed, splitter=splitter)
                         for p in spec["mixture"])
        ds = mixture(first, second, spec["k"])
    else:
        ds = load_dataset(spec["dataset"], split, seed=seed, splitter=splitter,
                          **spec.get("options", {}))
    if "classes" in spec:
        ds = select_classes(ds, spec["classes"])
    if "relabel" in spec:
        try:
            ds = relabel(ds, spec["relabel"])
        except ValueError as exc:
            raise ValueError(f"relabel: {str(exc).removeprefix('mapping: ')}") from None
    if "n_per_class" in spec and split == "train":
        ds = draw_per_class(ds, check_per_class(spec["n_per_class"], "n_per_class", ds),
                            seed=seed)
    if per_class is not None:
        option = getattr(per_class, "option", "per_class")
        ds = draw_per_class(ds, check_per_class(per_class, option, ds), seed=seed)
    return ds if n_examples is None else sample(ds, n_examples, seed=seed)


@dataclass(frozen=True)
class DataSummary:
    """What a command needs to know of a task before any job runs: its class count, image
    shape and the per-class sizes of both splits."""

    num_classes: int
    shape: tuple[int, ...]
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]


def describe_dataset(spec, *, seed: int = 0, name: str = "spec") -> DataSummary:
    """Check a dataset spec fully and summarise it, without training anything.

    Builds both splits (bundled loaders are cached in memory, so the jobs that follow pay
    nothing more), which runs every check the data have: class ids and relabelling against
    the real class count, ``k`` of a mixture, ``n_per_class`` against the class sizes
    (:func:`~transferability.data.check_per_class`), generator options, unreadable or
    non-finite user files. Any failure is a ``ValueError`` prefixed with ``name``.
    """
    check_dataset_spec(spec, name)
    try:
        train, test = (dataset_from_spec(spec, split, seed=seed) for split in ("train", "test"))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return DataSummary(train.num_classes, tuple(train.shape),
                       tuple(train.class_counts().tolist()), tuple(test.class_counts().tolist()))
