"""Zoos of source models described in YAML, trained once and cached by their config.

A spec lists models (``name``, ``arch``, ``data`` as in :mod:`transferability.data.spec`,
optional ``arch_kwargs`` and per-model ``train`` overrides) under shared ``train``
defaults. Each model is stored as a safe checkpoint named by a hash of everything that
determines its weights, so a rerun trains nothing, an edited entry retrains only itself,
and an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
import yaml
from torch import nn

from .data.spec import dataset_from_spec
from .features import Outputs, extract
from .models import create_model, list_models, load_checkpoint, save_checkpoint
from .training import evaluate, fit
from .utils import cache_dir as default_cache_dir
from .utils import content_key, seed_everything

__all__ = ["ZooEntry", "Zoo", "load_spec", "build_zoo", "load_models"]

_CACHE_VERSION = 1
_TRAIN_KEYS = {"epochs", "lr", "momentum", "weight_decay", "batch_size", "schedule", "seed"}


@dataclass(frozen=True)
class ZooEntry:
    name: str
    arch: str
    data: object
    train: Mapping
    arch_kwargs: Mapping = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Hash of everything that determines the trained weights."""
        return content_key({"v": _CACHE_VERSION, "arch": self.arch, "data": self.data,
                            "train": dict(self.train), "arch_kwargs": dict(self.arch_kwargs)})


def load_spec(spec: str | Path | Mapping) -> list[ZooEntry]:
    """Parse a zoo spec (a YAML path, ``"demo"`` for the bundled one, or a dict)."""
    if isinstance(spec, (str, Path)):
        if str(spec) == "demo":
            text = resources.files("transferability.configs").joinpath("demo.yaml").read_text()
        else:
            path = Path(spec)
            if not path.is_file():
                raise ValueError(f"spec: no such file {path}")
            text = path.read_text()
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"spec: invalid YAML: {exc}") from None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("models"), list):
        raise ValueError("spec: expected a mapping with a `models:` list")
    defaults = dict(spec.get("train", {}))
    entries, seen = [], set()
    for i, m in enumerate(spec["models"]):
        if not isinstance(m, Mapping) or not {"name", "arch", "data"} <= set(m):
            raise ValueError(f"spec: models[{i}] needs `name`, `arch` and `data`")
        if m["arch"] not in list_models():
            raise ValueError(f"spec: models[{i}] has unknown arch {m['arch']!r}; "
                             f"available: {', '.join(list_models())}")
        if m["name"] in seen:
            raise ValueError(f"spec: duplicate model name {m['name']!r}")
        seen.add(m["name"])
        train = {**defaults, **dict(m.get("train", {}))}
        bad = set(train) - _TRAIN_KEYS
        if bad:
            raise ValueError(f"spec: unknown train option(s) {sorted(bad)} in models[{i}]; "
                             f"allowed: {sorted(_TRAIN_KEYS)}")
        entries.append(ZooEntry(str(m["name"]), m["arch"], m["data"], train,
                                dict(m.get("arch_kwargs", {}))))
    return entries


class Zoo(Mapping):
    """Trained models by name (a read-only mapping) with their entries and cache files.

    ``trained`` and ``cached`` name the models this build trained and loaded.
    """

    def __init__(self, entries: list[ZooEntry], models: dict[str, nn.Module], cache_dir: Path,
                 trained: list[str], cached: list[str]):
        self.entries = {e.name: e for e in entries}
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
        e = self.entries[name]
        return self.cache_dir / "models" / f"{e.name}-{e.key}.pt"

    def outputs(self, name: str, data, data_key: str) -> Outputs:
        """Features/logits of model ``name`` on ``data``, cached on disk under ``data_key``."""
        path = self.cache_dir / "features" / f"{name}-{self.entries[name].key}-{data_key}.pt"
        if path.is_file():
            return Outputs(**torch.load(path, map_location="cpu", weights_only=True))
        out = extract(self._models[name], data.x, data.y)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(out.to_dict(), path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        return out


def _train_entry(entry: ZooEntry, show_progress: bool | None) -> tuple[nn.Module, dict]:
    train = dataset_from_spec(entry.data, "train", seed=entry.train.get("seed", 0))
    test = dataset_from_spec(entry.data, "test", seed=entry.train.get("seed", 0))
    seed_everything(entry.train.get("seed", 0))  # the initial weights depend on the seed too
    model = create_model(entry.arch, num_classes=train.num_classes,
                         in_channels=train.shape[0], **entry.arch_kwargs)
    start = time.perf_counter()
    fit(model, train, show_progress=show_progress, desc=entry.name, **entry.train)
    acc, loss = evaluate(model, test)
    meta = {"name": entry.name, "data": entry.data, "train": dict(entry.train),
            "arch_kwargs": dict(entry.arch_kwargs), "in_channels": train.shape[0],
            "metrics": {"test_acc": acc, "test_loss": loss,
                        "train_seconds": time.perf_counter() - start}}
    return model.eval(), meta


def build_zoo(spec: str | Path | Mapping, cache_dir: str | Path | None = None, *,
              only: list[str] | None = None, show_progress: bool | None = None,
              log=print) -> Zoo:
    """Train (or load from cache) every model of ``spec`` (or the ``only`` named ones).

    Each model is saved as soon as it is trained, so an interrupted build loses at most
    the model in progress.
    """
    entries = load_spec(spec)
    if only is not None:
        names = [e.name for e in entries]
        missing = sorted(set(only) - set(names))
        if missing:
            raise ValueError(f"only: no model(s) {missing} in the spec; it has {names}")
        entries = [e for e in entries if e.name in only]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    models, trained, cached = {}, [], []
    zoo = Zoo(entries, models, cache_dir, trained, cached)
    for entry in entries:
        path = zoo.path(entry.name)
        if path.is_file():
            models[entry.name] = load_checkpoint(path)
            cached.append(entry.name)
            continue
        model, meta = _train_entry(entry, show_progress)
        save_checkpoint(model, path, arch=entry.arch, **meta)
        model.meta = {**meta, "arch": entry.arch, "num_classes": model.num_classes}
        models[entry.name] = model
        trained.append(entry.name)
        if log:
            log(f"trained {entry.name:<12} test acc {meta['metrics']['test_acc']:.3f} "
                f"({meta['metrics']['train_seconds']:.1f}s) -> {path}")
    return zoo


def load_models(sources: list[str], cache_dir: str | Path | None = None, *,
                log=print) -> dict[str, nn.Module]:
    """Resolve CLI model arguments into named models.

    Each item is a checkpoint file, a zoo spec (a YAML path or ``demo``: all its models,
    built or loaded from cache), or ``SPEC:NAME`` for one model of a spec
    (``demo:cnn-k5``).
    """
    models: dict[str, nn.Module] = {}
    for s in sources:
        spec, sep, name = s.rpartition(":")
        if not sep or Path(s).is_file():
            spec, name = s, None
        if spec == "demo" or spec.endswith((".yaml", ".yml")):
            models.update(build_zoo(spec, cache_dir, only=[name] if name else None, log=log))
        else:
            model = load_checkpoint(s)
            models[model.meta.get("name") or Path(s).stem] = model
    if not models:
        raise ValueError("sources: no models given")
    return models
