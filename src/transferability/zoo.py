"""Zoos of source models described in YAML, trained once and cached by their config.

A spec lists models (``name``, ``arch``, ``data`` as in :mod:`transferability.data.spec`,
optional ``arch_kwargs`` and per-model ``train`` overrides) under shared ``train``
defaults. Each model is stored as a safe checkpoint named by a hash of everything that
determines its weights, so a rerun trains nothing, an edited entry retrains only itself,
and an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from ._files import check_writable_dir, inside, parse_yaml, read_yaml
from ._validation import check_name
from .data.registry import split_indices
from .data.spec import check_dataset_spec, dataset_from_spec, describe_dataset
from .devices import place
from .jobs import Given, Job, Output, ResultStore, job_kind, run_jobs
from .models import Ensemble, create_model, list_models
from .training import EarlyStopping, Snapshot, check_fit_options, evaluate, fit, lgv_members
from .utils import cache_dir as default_cache_dir
from .utils import content_key, seed_everything

__all__ = ["ZooEntry", "Zoo", "load_spec", "build_zoo", "zoo_jobs", "entry_config",
           "check_entry_data"]

log = logging.getLogger("transferability")

_CACHE_VERSION = 1
_ENTRY_KEYS = {"name", "arch", "data", "train", "arch_kwargs", "init"}


@dataclass(frozen=True)
class ZooEntry:
    name: str
    arch: str
    data: object
    train: Mapping
    arch_kwargs: Mapping = field(default_factory=dict)
    init: ZooEntry | None = None  # the entry whose trained weights this one starts from

    @property
    def key(self) -> str:
        """Hash of everything that determines the trained weights."""
        return content_key({"v": _CACHE_VERSION, "arch": self.arch, "data": self.data,
                            "train": dict(self.train), "arch_kwargs": dict(self.arch_kwargs),
                            **({"init": self.init.key} if self.init else {})})


def _entry(m, i: int, defaults: dict, earlier: dict[str, ZooEntry]) -> ZooEntry:
    """One checked ``models:`` item: a safe name, a known arch that builds with its options,
    a valid data spec naming existing datasets, valid training options."""
    where = f"spec: models[{i}]"
    if not isinstance(m, Mapping) or not {"name", "arch", "data"} <= set(m):
        raise ValueError(f"{where} needs `name`, `arch` and `data`")
    unknown = sorted(set(m) - _ENTRY_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_ENTRY_KEYS)}")
    name = check_name(m["name"], f"{where}.name")
    if m["arch"] not in list_models():
        raise ValueError(f"{where} has unknown arch {m['arch']!r}; "
                         f"available: {', '.join(list_models())}")
    kwargs = m.get("arch_kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"{where}.arch_kwargs: expected a mapping of options")
    try:
        with torch.device("meta"):  # checks the options without allocating any weights
            create_model(m["arch"], **kwargs)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None
    if not isinstance(m["data"], str | Mapping):
        raise ValueError(f"{where}.data: expected a dataset name or a mapping")
    check_dataset_spec(m["data"], f"{where}.data")
    train = {**defaults, **check_fit_options(m.get("train") or {}, f"{where}.train.")}
    init = None
    if "init" in m:
        init = earlier.get(m["init"]) if isinstance(m["init"], str) else None
        if init is None:
            raise ValueError(f"{where}.init: expected the name of an earlier entry, got "
                             f"{m['init']!r}")
        if (init.arch, dict(init.arch_kwargs)) != (m["arch"], dict(kwargs)):
            raise ValueError(f"{where}.init: {init.name!r} is a {init.arch} with "
                             f"{dict(init.arch_kwargs)}; this entry must have the same "
                             "architecture to start from its weights")
    return ZooEntry(name, m["arch"], m["data"], train, dict(kwargs), init)


def check_entry_data(entry: ZooEntry) -> None:
    """The checks of an entry that need its data (:func:`describe_dataset`: class ids,
    ``k``, ``n_per_class`` and options against the real dataset, unreadable files), and
    that its architecture and ``arch_kwargs`` fit the images (a forward pass on the meta
    device: no weights, no training), and its ``init`` entry's classes and images."""
    where = f"spec: model {entry.name!r}"
    seed = entry.train.get("seed", 0)
    data = describe_dataset(entry.data, seed=seed, name=f"{where}.data")
    try:
        with torch.device("meta"):
            model = create_model(entry.arch, num_classes=data.num_classes,
                                 in_channels=data.shape[0], **entry.arch_kwargs)
            model(torch.empty((2, *data.shape)))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{where}: a {entry.arch} with arch_kwargs {dict(entry.arch_kwargs)} "
                         f"does not fit its data (images {data.shape}, {data.num_classes} "
                         f"classes): {first}") from None
    if entry.init is not None:
        init = describe_dataset(entry.init.data, seed=entry.init.train.get("seed", 0),
                                name=f"spec: model {entry.init.name!r}.data")
        if (init.num_classes, init.shape) != (data.num_classes, data.shape):
            raise ValueError(f"{where}.init: {entry.init.name!r} has {init.num_classes} "
                             f"classes of images {init.shape}; this entry's data have "
                             f"{data.num_classes} of {data.shape}")


def load_spec(spec: str | Path | Mapping) -> list[ZooEntry]:
    """Parse and check a zoo spec (a YAML path, ``"demo"`` for the bundled one, or a dict).

    Every entry is checked (names, architectures and their options, training options)
    before anything is trained.
    """
    if isinstance(spec, str | Path):
        if str(spec) == "demo":
            text = resources.files("transferability.configs").joinpath("demo.yaml").read_text()
            spec = parse_yaml(text)
        else:
            spec = read_yaml(spec, "spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("models"), list):
        raise ValueError("spec: expected a mapping with a `models:` list")
    unknown = sorted(set(spec) - {"train", "models"})
    if unknown:
        raise ValueError(f"spec: unknown top-level key(s) {unknown}; allowed: models, train")
    defaults = check_fit_options(spec.get("train") or {}, "spec: train.")
    entries: dict[str, ZooEntry] = {}
    for i, m in enumerate(spec["models"]):
        entry = _entry(m, i, defaults, entries)
        if entry.name in entries:
            raise ValueError(f"spec: duplicate model name {entry.name!r}")
        entries[entry.name] = entry
    return list(entries.values())


class Zoo(Mapping):
    """Trained models by name (a read-only mapping) with their entries and cache files.

    ``trained`` and ``cached`` name the models this build trained and loaded.
    """

    def __init__(self, entries: list[ZooEntry], models: dict[str, nn.Module], cache_dir: Path,
                 trained: list[str], cached: list[str], artifacts: Path,
                 keys: dict[str, str]):
        self.entries = {e.name: e for e in entries}
        self._artifacts, self.job_keys = artifacts, keys
        self._models = models
        self.cache_dir = cache_dir
        self.trained, self.cached = trained, cached

    def __getitem__(self, name: str) -> nn.Module:
        return self._models[name]

    def __iter__(self):
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def path(self, name: str) -> Path:
        """The checkpoint of model ``name`` (an artifact of the results store)."""
        return self._artifacts / f"{self.job_keys[name]}.pt"

    def snapshot_dir(self, name: str) -> Path:
        """Where the per-epoch checkpoints of ``train: {snapshot_every: N}`` go."""
        e = self.entries[name]
        return inside(self.cache_dir, self.cache_dir / "snapshots" / f"{e.name}-{e.key}")


def _train_entry(entry: ZooEntry, show_progress: bool | None, snapshot_dir: Path | None,
                 init: nn.Module | None, device=None) -> tuple[nn.Module, dict]:
    seed = entry.train.get("seed", 0)
    train = dataset_from_spec(entry.data, "train", seed=seed)
    test = dataset_from_spec(entry.data, "test", seed=seed)
    seed_everything(seed)  # the initial weights depend on the seed too
    model = create_model(entry.arch, num_classes=train.num_classes,
                         in_channels=train.shape[0], **entry.arch_kwargs)
    if device is not None:
        place(model, device, entry.name)
    start = time.perf_counter()
    options = dict(entry.train)
    every = options.pop("snapshot_every", None)
    callbacks = [] if every is None or snapshot_dir is None else [Snapshot(every, snapshot_dir)]
    monitored = test
    stop = options.pop("early_stopping", None)
    if stop is not None:  # the best epoch on a validation split of the train images
        kept, held = split_indices(train, stop["val_fraction"], seed)
        if len(held):
            train, monitored = train.subset(kept), train.subset(held)
            callbacks.append(EarlyStopping("accuracy", stop["patience"]))
    model.meta = {"arch": entry.arch, "num_classes": train.num_classes,
                  "in_channels": train.shape[0], "arch_kwargs": dict(entry.arch_kwargs),
                  "name": entry.name}
    if init is not None:
        try:
            model.load_state_dict(init.state_dict())
        except RuntimeError:
            raise ValueError(f"init: the entry {entry.name!r} starts from has other classes "
                             "or shapes than its data") from None
    history = fit(model, train, test=monitored, callbacks=callbacks, show_progress=show_progress,
                  desc=entry.name, **options)
    if history.extras.get("members"):  # LGV: the collected weights are the surrogate
        model = Ensemble(lgv_members(model, history.extras["members"]), sample=1,
                         seed=options.get("seed", 0))
    acc, loss = evaluate(model, test)
    meta = {"name": entry.name, "data": entry.data, "train": dict(entry.train),
            "arch_kwargs": dict(entry.arch_kwargs), "in_channels": train.shape[0],
            "history": history.epochs,
            "metrics": {"accuracy": acc, "loss": loss,
                        "train_seconds": time.perf_counter() - start}}
    return model.eval(), meta


def entry_config(entry: ZooEntry) -> dict:
    """What determines an entry's weights, and its name (which its checkpoint carries)."""
    return {"name": entry.name, "arch": entry.arch, "data": entry.data, "train": dict(entry.train),
            "arch_kwargs": dict(entry.arch_kwargs)}


@job_kind("train", artifact="model")
def train_job(config: dict, inputs: dict, device=None) -> Output:
    """Train one zoo entry on ``device`` (from the weights of ``inputs["init"]`` when
    given)."""
    entry = ZooEntry(config["name"], config["arch"], config["data"],
                     config["train"], config["arch_kwargs"])
    init = inputs["init"].artifact if "init" in inputs else None
    model, meta = _train_entry(entry, None, snapshot_dir(config, inputs), init, device)
    save = {"arch": entry.arch, **meta}
    model.meta = {**dict(getattr(model, "meta", {}) or {}), **save}
    return Output({"name": entry.name, "metrics": meta["metrics"],
                   "history": meta["history"]}, model)


def snapshot_dir(config: dict, inputs: dict) -> Path | None:
    """Where a ``train`` job with ``snapshot_every`` writes its per-epoch checkpoints (a
    side output): ``<cache>/snapshots/NAME-KEY``."""
    if "snapshots" not in config or "snapshot_root" not in inputs:
        return None
    root = Path(inputs["snapshot_root"].artifact)
    return inside(root, root / config["snapshots"])


def zoo_jobs(entries: list[ZooEntry], cache_dir: Path | None = None) -> dict[str, Job]:
    """One ``train`` job per entry (an ``init`` entry's job is its input).

    An entry with ``snapshot_every`` also gets the snapshot folder as an input whose key
    does not depend on the path, so a moved cache or another machine keeps the job's key.
    """
    jobs: dict[str, Job] = {}
    root = None if cache_dir is None else Given("snapshot-root",
                                                str(Path(cache_dir) / "snapshots"))
    for e in entries:
        config = entry_config(e)
        inputs = {"init": jobs[e.init.name]} if e.init is not None else {}
        if "snapshot_every" in e.train and root is not None:
            config["snapshots"] = f"{e.name}-{e.key}"
            inputs["snapshot_root"] = root
        jobs[e.name] = Job("train", config, inputs, label=e.name)
    return jobs


def build_zoo(spec: str | Path | Mapping, cache_dir: str | Path | None = None, *,
              only: list[str] | None = None, show_progress: bool | None = None,
              store: ResultStore | None = None, device=None) -> Zoo:
    """Train (or load from the results store) every model of ``spec`` (or the ``only``
    named ones), on ``device`` (None: the CPU), where the models are returned.

    The whole spec is checked before anything is trained, and the data and architecture of
    every entry the store lacks too (:func:`check_entry_data`). Each model is a ``train`` job of
    the store (``store``, by default the one in ``cache_dir``), recorded as soon as it is
    trained, so an interrupted build loses at most the model in progress; a damaged
    checkpoint is moved aside and retrained. Progress is logged to the ``transferability``
    logger.
    """
    entries = load_spec(spec)
    if only is not None:
        names = [e.name for e in entries]
        missing = sorted(set(only) - set(names))
        if missing:
            raise ValueError(f"only: no model(s) {missing} in the spec; it has {names}")
        wanted = set(only)
        for e in reversed(entries):  # an entry needs the one it starts from
            if e.name in wanted and e.init is not None:
                wanted.add(e.init.name)
        entries = [e for e in entries if e.name in wanted]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    jobs = zoo_jobs(entries, cache_dir)
    own = store is None
    store = ResultStore.in_cache(cache_dir) if own else store
    try:
        to_train = [e for e in entries if jobs[e.name].key not in store]
        for e in to_train:  # every check before any job runs (cached entries passed them)
            check_entry_data(e)
        if to_train:
            check_writable_dir(store.artifacts, "cache_dir")
        run = run_jobs(jobs.values(), store, study="zoo", show_progress=show_progress,
                       device=device)
    finally:
        if own:
            store.close()
    models, trained, cached = {}, [], []
    for name, job in jobs.items():
        models[name] = run.artifact(job)
        (trained if job.key in run.computed else cached).append(name)
        if job.key in run.computed:
            metrics = run.value(job)["metrics"]
            log.info("trained %-12s accuracy %.3f (%.1fs)", name, metrics["accuracy"],
                     metrics["train_seconds"])
    return Zoo(entries, models, cache_dir, trained, cached, store.artifacts,
               {n: j.key for n, j in jobs.items()})
