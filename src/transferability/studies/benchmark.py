"""The transferability benchmark: which score to trust, over many sources and targets.

One target and eight sources give bootstrap intervals too wide to tell the scores apart.
The benchmark runs the adversarial ↔ knowledge study (:mod:`transferability.studies.adv_knowledge`,
without its transfer matrix) on several targets over one zoo of dozens of sources, and
reports for every score (the knowledge estimators, Liang et al. 2021's α family, gradient
alignment, attribution affinity, the affine fit):

- per target, its agreement with the few-shot and the full-data linear probe (weighted
  Kendall τ, Spearman, Pearson with 95% bootstrap CIs over sources, top-1 hit, regret);
- across targets, its mean and worst weighted τ (vs the few-shot probe), top-1 hits and
  mean regret;
- its **setup stability** (Agostinelli et al., ECCV 2022): a *setup* is an architecture
  trained on a dataset, its seeds are replicas; for each target, the Kendall τ between the
  score's ranking of the setups by their seed-a sources and by their seed-b sources,
  averaged over seed pairs and targets. A score whose ranking changes with the training
  seed cannot be trusted to pick a setup;
- beside the scores, the target-blind baselines (:mod:`transferability.baselines`:
  parameter count, the source's test accuracy on its own task, feature dimension) in the
  same rows with the same intervals, and the mean-rank ``ensemble`` of the three scores with
  the best mean τ on the *other* targets (leave-one-target-out). For every score and
  target, the paired bootstrap interval of τ(score) − τ(best baseline on that target) says
  whether the score beats the best baseline (interval above zero); the summary gives the
  share of targets where it does.

Sources: every architecture of ``archs`` on Liang et al.'s mixtures (the first k of 10
classes printed digits, ``fonts``, the rest animal silhouettes) for each k of ``ks``, and
every architecture of ``other_archs`` on each task of ``others``, all trained with every
seed of ``seeds``.

No source sees a target's test images. Every dataset is split into train and test by the
benchmark's ``seed``; every source trains on a train split, with that split seed pinned in
its data spec whatever its training seed (so the seeds change only the initial weights and
the order of the batches), and so does each target's reference model. The targets' test
splits, disjoint from their train splits, are used only to measure the probes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
from torch import nn

from .._results import Result
from .._validation import Each, Integer, OneOf, Seed, Table
from ..attacks import AttackRule, AttackSpec
from ..baselines import (
    BASELINES,
    ENSEMBLE,
    loto_choice,
    mean_rank,
    model_accuracy,
    parameter_count,
)
from ..data import dataset_from_spec
from ..jobs import Job, ResultStore, job_kind, open_store, run_jobs
from ..models import list_models
from ..stats import bootstrap_difference, correlation_table, kendall, weighted_tau
from ..zoo import load_spec, zoo_jobs
from . import Settings, Study, register_study, setting
from .adv_knowledge import adv_knowledge_jobs, reference_spec

__all__ = ["BenchmarkResult", "BenchmarkSettings", "benchmark_jobs", "run_benchmark",
           "source_specs", "setup_stability", "FULL", "QUICK"]

log = logging.getLogger("transferability")

MIXTURE = ("fonts", "animals")

_SYNTHETIC = {"dataset": "synthetic", "options": {"shared": 0.5, "task_seed": 1,
                                                  "n_per_class": 150}}


@dataclass(frozen=True)
class BenchmarkSettings(Settings):
    """The benchmark's settings, checked once; the defaults are the benchmark of the issue:
    4 architectures × 6 mixtures + 2 architectures × 2 other tasks, 3 seeds each (84
    sources), on 3 targets. The synthetic target is noisy enough (``noise`` 5) that no
    probe saturates at 100%. ``targets`` and ``others`` map names to data specs."""

    archs: tuple[str, ...] = setting(("mlp", "lenet", "cnn", "resnet"),
                                     Each(OneOf(*list_models())),
                                     "architectures trained on every mixture")
    ks: tuple[int, ...] = setting((0, 2, 4, 6, 8, 10), Each(Integer(0, 10)),
                                  "mixtures: k of 10 classes from the first task")
    other_archs: tuple[str, ...] = setting(("mlp", "cnn"), Each(OneOf(*list_models())),
                                           "architectures trained on the other tasks")
    others: dict = setting({"digits": "digits", "synthetic": _SYNTHETIC},
                           Table(), "other source tasks: name -> data spec", option=False)
    seeds: tuple[int, ...] = setting((0, 1, 2), Each(Seed()),
                                     "training seeds of every source setup (at least two)")
    source_per_class: int = setting(100, Integer(), "source training images per class")
    epochs: int = setting(2, Integer(), "source training epochs")
    batch_size: int = setting(32, Integer(), "source training batch size")
    targets: dict = setting({
        "mnist": "mnist", "digits": "digits",
        "synthetic": {"dataset": "synthetic", "options": {"shared": 0.5, "task_seed": 2,
                                                          "noise": 5.0, "n_per_class": 150}}},
        Table(min_len=1), "targets: name -> data spec", option=False)
    target_per_class: int = setting(100, Integer(), "target images per class")
    reference_epochs: int = setting(3, Integer(), "epochs of each target's reference model")
    shots: int = setting(10, Integer(), "few-shot probe: images per class")
    repeats: int = setting(3, Integer(), "few-shot draws to average")
    alpha_per_class: int = setting(10, Integer(), "target images per class for α")
    attack: AttackSpec = setting(AttackSpec("pgd", {"steps": 20}), AttackRule(factories=False),
                                 "the α attack, over the authors' (ε 0.1, steps of 0.2·ε)")
    seed: int = setting(0, Seed(), "seed of the data draws and the scores")

    def check(self) -> None:
        if len(self.seeds) < 2:
            raise ValueError("seeds: setup stability compares seeds; give at least two")


#: The benchmark of the issue (its command), and a check of the whole pipeline in half a
#: minute: 2 architectures × 3 mixtures + 1 other task, 2 seeds (14 sources), on 2 targets.
FULL = BenchmarkSettings()
QUICK = FULL.replace(
    archs=("mlp", "cnn"), ks=(0, 5, 10), other_archs=("mlp",),
    others={"synthetic": _SYNTHETIC}, seeds=(0, 1), source_per_class=30, epochs=1,
    targets={"digits": "digits",
             "synthetic": {"dataset": "synthetic",
                           "options": {"shared": 0.5, "task_seed": 2, "noise": 5.0,
                                       "n_per_class": 60}}},
    target_per_class=30, reference_epochs=2, shots=5, repeats=2, alpha_per_class=4,
    attack=AttackSpec("pgd", {"steps": 10}))

#: The ground truths whose setup stability is reported beside the scores'.
TRUTHS = ("fewshot_acc", "probe_acc")


def _mean(values) -> float:
    """The mean of the finite values; NaN when there is none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _data(spec) -> dict:
    """A data spec as a mapping of its own (a dataset name becomes ``{"dataset": name}``)."""
    return {"dataset": spec} if isinstance(spec, str) else dict(spec)


def _plain_settings(settings: BenchmarkSettings | Mapping) -> dict:
    """Settings (or a complete dict of them, checked) as a JSON-ready dict."""
    if not isinstance(settings, BenchmarkSettings):
        settings = BenchmarkSettings.from_dict(settings)
    return settings.to_dict()


def source_specs(settings: BenchmarkSettings | Mapping) -> tuple[dict, list[dict]]:
    """The sources' zoo spec, and one row per source: its name, setup, architecture, data
    and training seed."""
    settings = _plain_settings(settings)
    data = {f"k{k}": {"mixture": list(MIXTURE), "k": k} for k in settings["ks"]}
    tasks = [(arch, name, spec) for arch in settings["archs"] for name, spec in data.items()]
    tasks += [(arch, name, spec) for arch in settings["other_archs"]
              for name, spec in settings["others"].items()]
    models, table = [], []
    for arch, name, spec in tasks:
        spec = _data(spec)
        spec.update(n_per_class=settings["source_per_class"], seed=settings["seed"])
        for seed in settings["seeds"]:
            source = f"{arch}-{name}-s{seed}"
            models.append({"name": source, "arch": arch, "data": spec,
                           "train": {"seed": seed}})
            table.append({"source": source, "setup": f"{arch}-{name}", "arch": arch,
                          "data": name, "seed": seed})
    train = {"epochs": settings["epochs"], "lr": 0.05, "batch_size": settings["batch_size"]}
    return {"train": train, "models": models}, table


def benchmark_jobs(settings: BenchmarkSettings | Mapping = FULL,
                   cache_dir: str | Path | None = None) -> Job:
    """The benchmark's graph: a ``train`` job per source and per target's reference, the
    study's jobs per target (``matrix=False``), and a final ``benchmark`` job whose value
    is a :class:`BenchmarkResult` dict. ``settings`` may be a complete dict of the
    fields of :class:`BenchmarkSettings`."""
    settings = _plain_settings(settings)
    spec, table = source_specs(settings)
    cache = Path(cache_dir) if cache_dir is not None else None
    sources = zoo_jobs(load_spec(spec), cache)
    seed, studies = settings["seed"], {}
    for name, target in settings["targets"].items():
        target = _data(target)
        ref = reference_spec(target, epochs=settings["reference_epochs"],
                             train_per_class=settings["target_per_class"], seed=seed)
        ref["models"][0]["name"] = f"reference-{name}"
        (reference,) = zoo_jobs(load_spec(ref), cache).values()
        data = {**target, "n_per_class": settings["target_per_class"]}
        train, test = (dataset_from_spec(data, split, seed=seed) for split in ("train", "test"))
        studies[f"study/{name}"] = adv_knowledge_jobs(
            reference, sources, train, test, alpha_per_class=settings["alpha_per_class"],
            attack=AttackSpec.of(settings["attack"]), shots=settings["shots"],
            repeats=settings["repeats"], seed=seed, matrix=False)
    models = {f"source/{name}": job for name, job in sources.items()}
    return Job("benchmark", {"settings": settings, "targets": list(settings["targets"]),
                             "sources": table}, {**studies, **models},
               label=f"{len(table)} sources on {len(studies)} targets")


def setup_stability(rows: list[dict], sources: list[dict], column: str) -> float:
    """Setup stability of ``column`` on one target (Agostinelli et al., ECCV 2022): the
    Kendall τ-b between the setups' values from their seed-a sources and from their
    seed-b sources, averaged over the pairs of seeds (NaN where undefined)."""
    setup = {s["source"]: (s["setup"], s["seed"]) for s in sources}
    value = {setup[r["source"]]: r[column] for r in rows}
    setups = list(dict.fromkeys(s["setup"] for s in sources))
    seeds = sorted({s["seed"] for s in sources})
    taus = []
    for a, b in combinations(seeds, 2):
        both = [u for u in setups if (u, a) in value and (u, b) in value]
        if any(not math.isfinite(value[u, s]) for u in both for s in (a, b)):
            taus.append(float("nan"))  # e.g. α from a reference that has not learned
        elif len(both) >= 2:
            taus.append(kendall([value[u, a] for u in both], [value[u, b] for u in both]))
    return _mean(taus)


@dataclass(frozen=True)
class BenchmarkResult(Result):
    """Per target: the study's rows and each score's agreement with the few-shot probe
    (``correlations``) and the full-data probe (``probe_correlations``), and its setup
    stability; across targets: the ``summary``, one row per score, best first."""

    targets: list[str]
    sources: list[dict]
    predictors: list[str]
    per_target: list[dict]
    summary: list[dict]
    settings: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """Every (target, source) row with the source's setup and seed, for a CSV."""
        info = {s["source"]: s for s in self.sources}
        return [{"target": t["target"], **info[r["source"]], **r}
                for t in self.per_target for r in t["rows"]]


def _summary(predictors: list[str], per_target: list[dict]) -> list[dict]:
    out = []
    for p in predictors:
        few = [next(c for c in t["correlations"] if c["estimator"] == p) for t in per_target]
        full = [next(c for c in t["probe_correlations"] if c["estimator"] == p)
                for t in per_target]
        taus = [c["weighted_tau"] for c in few]
        finite = [v for v in taus if math.isfinite(v)]
        out.append({"score": p, "mean_tau": _mean(taus),
                    "worst_tau": min(finite) if finite else float("nan"),
                    "mean_spearman": _mean(c["spearman"] for c in few),
                    "top1_hits": sum(bool(c["top1"]) for c in few),
                    "mean_regret": _mean(c["regret"] for c in few),
                    "probe_tau": _mean(c["weighted_tau"] for c in full),
                    "stability": _mean(t["stability"][p] for t in per_target),
                    "beats_baseline": _mean(t["beats_baseline"][p]["low"] > 0
                                            for t in per_target)})
    return sorted(out, key=lambda r: -r["mean_tau"] if math.isfinite(r["mean_tau"])
                  else math.inf)


def _baselines(model: nn.Module, value: dict) -> dict[str, float]:
    """A zoo source's baselines: parameters, test accuracy on its own task, and the width
    of the input of its last ``nn.Linear`` (the features the estimators see)."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return {"params": float(parameter_count(model)),
            "source_acc": model_accuracy(value),
            "feature_dim": float(heads[-1].in_features)}


def _add_scores(target: dict, names: list[str], seed: int) -> None:
    """Correlation rows of ``names`` (already in the target's rows) for both truths."""
    rows = target["rows"]
    for key, column in (("correlations", "fewshot_acc"), ("probe_correlations", "probe_acc")):
        target[key] = target[key] + [c.as_dict() for c in correlation_table(
            {n: [r[n] for r in rows] for n in names}, [r[column] for r in rows], seed=seed)]


def _against_baselines(target: dict, predictors: list[str], seed: int) -> dict:
    """For every score: τ(score) − τ(best baseline here) vs the few-shot probe, with its
    paired bootstrap interval."""
    rows, taus = target["rows"], {c["estimator"]: c["weighted_tau"]
                                  for c in target["correlations"]}
    best = max(BASELINES, key=lambda b: -math.inf if math.isnan(taus[b]) else taus[b])
    truth = [r["fewshot_acc"] for r in rows]
    out = {}
    for p in predictors:
        if not all(math.isfinite(r[p]) for r in rows):  # α of a reference at chance: n/a
            diff = low = high = float("nan")
        else:
            diff, low, high = bootstrap_difference(weighted_tau, [r[p] for r in rows],
                                                   [r[best] for r in rows], truth, seed=seed)
        out[p] = {"baseline": best, "difference": diff, "low": low, "high": high}
    return out


@job_kind("benchmark", device=False)
def benchmark_job(config: dict, inputs: dict) -> dict:
    """The benchmark's tables from its studies (see :func:`run_benchmark`)."""
    sources, per_target, predictors = config["sources"], [], None
    seed = config["settings"]["seed"]
    base = {s["source"]: _baselines(inputs[f"source/{s['source']}"].artifact,
                                    inputs[f"source/{s['source']}"].value) for s in sources}
    for name in config["targets"]:
        study = inputs[f"study/{name}"].value
        predictors = study["predictors"]
        target = {"target": name, "rows": [{**r, **base[r["source"]]} for r in study["rows"]],
                  "correlations": study["correlations"],
                  "probe_correlations": study["probe_correlations"]}
        _add_scores(target, list(BASELINES), seed)
        per_target.append(target)
    taus = {p: [next(c["weighted_tau"] for c in t["correlations"] if c["estimator"] == p)
                for t in per_target] for p in predictors}
    for i, target in enumerate(per_target):  # the ensemble, chosen without this target
        target["ensemble"] = loto_choice(taus, i) if len(per_target) > 1 else []
        ranks = (mean_rank(target["rows"], target["ensemble"]) if target["ensemble"]
                 else [float("nan")] * len(target["rows"]))
        for row, value in zip(target["rows"], ranks, strict=True):
            row[ENSEMBLE] = value
        _add_scores(target, [ENSEMBLE], seed)
    predictors = [*predictors, *BASELINES, ENSEMBLE]
    for target in per_target:
        target["stability"] = {c: setup_stability(target["rows"], sources, c)
                               for c in (*predictors, *TRUTHS)}
        target["beats_baseline"] = _against_baselines(target, predictors, seed)
    return BenchmarkResult(list(config["targets"]), sources, predictors, per_target,
                           _summary(predictors, per_target), config["settings"]).to_dict()


def run_benchmark(settings: BenchmarkSettings | Mapping = FULL, *,
                  store: ResultStore | None = None, cache_dir: str | Path | None = None,
                  backend: str = "local", device=None, show_progress: bool | None = None,
                  **backend_options) -> BenchmarkResult:
    """Run the benchmark (see the module docstring) and return its tables.

    Every model, feature set, probe and score is a stored job: a rerun computes nothing and
    an interrupted run resumes. Jobs run on ``backend`` (with ``backend_options``) and are
    kept in ``store``, by default the one in ``cache_dir``.
    """
    final = benchmark_jobs(settings, cache_dir)
    log.info("  benchmark: %s", final.label)
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="benchmark", backend=backend, device=device,
                       show_progress=show_progress, **backend_options)
    return BenchmarkResult.from_dict(run.value(final))



#: The benchmark's descriptor (its command is ``transferability benchmark``).
STUDY = register_study(Study(
    "benchmark", "Benchmark", BenchmarkResult, "benchmark", run_benchmark, FULL, QUICK,
    help="Which score to trust: the adversarial ↔ knowledge study on several targets over "
         "dozens of sources (4 architectures × 6 mixtures and other tasks, 3 seeds); mean and "
         "worst weighted τ, top-1 hits, regret and setup stability per score. About 6 "
         "minutes on a 2-core CPU; --quick (14 sources on 2 small targets): half a minute.",
    aliases=("benchmark",)))
