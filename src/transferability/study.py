"""The adversarial ↔ knowledge transferability study (Liang et al., ICML 2021).

For a zoo of source models, a target task and a reference model trained on it:

- **knowledge transfer** (ground truth): few-shot and full-data linear-probe accuracy on
  the target, and the closed-form affine-fit loss of the source's outputs to the labels;
- **predictors**: the knowledge estimators (LEEP, NCE, H-score, LogME, TransRate) and the
  adversarial scores in the paper's direction, α^{T→S} (attacks crafted on the target
  reference, shown to the source): α1, α2, α12, α1·α2, gradient alignment, attribution
  affinity;
- **agreement**: weighted τ, Spearman and Pearson of every predictor with the few-shot probe
  accuracy, each with a bootstrap CI over sources;
- **the reverse direction**: a transfer matrix between the reference and each transferred
  model (source + probe head); does knowledge transfer between two models (the affine fit
  of one's outputs from the other's) predict measured adversarial transfer between them?
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from ._results import Result
from .adversarial import MODEL_SCORES, affine_fit_loss
from .attacks import AttackFactory, with_seed
from .data import ImageDataset, per_class
from .features import Outputs, extract, with_head
from .features import outputs_fn as default_outputs
from .ranking import format_correlations, rank_sources
from .report import format_table
from .stats import correlation_table
from .transfer import probe_features
from .transfer_matrix import TransferMatrix, transfer_matrix

log = logging.getLogger("transferability")

#: The transfer matrix's attack in the study: L∞ PGD, ε = 0.3, 10 steps.
MATRIX_ATTACK_OPTIONS = MappingProxyType({"eps": 0.3, "steps": 10})

__all__ = ["StudyResult", "adv_knowledge_study", "reference_spec", "load_reference"]

AFFINE = "neg_affine_loss"  # −(affine-fit loss): higher = better, like every predictor


def reference_spec(target, *, arch: str = "cnn", epochs: int = 3,
                   n_per_class: int | None = None, seed: int = 0) -> dict:
    """A zoo spec for the reference model: ``arch`` trained on the target task (f_T).

    ``seed`` must be the study's: it picks the target's train/test split, so the reference
    never sees the test images the study attacks.
    """
    data = {"dataset": target} if isinstance(target, str) else dict(target)
    if n_per_class:
        data["n_per_class"] = n_per_class
    name = f"reference-{target if isinstance(target, str) else 'target'}"
    return {"train": {"epochs": epochs, "lr": 0.05, "seed": seed},
            "models": [{"name": name.replace("/", "-"), "arch": "cnn" if arch is None else arch,
                        "data": data}]}


def load_reference(reference: str, target, cache_dir=None, *, seed: int = 0) -> nn.Module:
    """The CLI's ``--reference``: ``train`` (a cached cnn trained on ``target``'s split for
    ``seed``), or any model argument (:mod:`transferability.model_args`) naming one model."""
    from .model_args import load_models
    from .zoo import build_zoo

    if reference == "train":
        (model,) = build_zoo(reference_spec(target, seed=seed), cache_dir).values()
        return model
    models = load_models([reference], cache_dir)
    if len(models) != 1:
        raise ValueError(f"reference: expected one model, {reference!r} gives {len(models)}; "
                         "pick one with SPEC:NAME")
    return next(iter(models.values()))


@dataclass(frozen=True)
class StudyResult(Result):
    """Per-source rows, the predictors' agreement with the few-shot probe, the transfer
    matrix, and the reverse-direction rows and agreement."""

    rows: list[dict]
    predictors: list[str]
    truth: str
    correlations: list[dict]
    transfer_matrix: TransferMatrix
    reverse: list[dict] = field(default_factory=list)
    reverse_correlations: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def format(self) -> str:
        adversarial = [p for p in self.predictors if p in MODEL_SCORES]
        knowledge = [p for p in self.predictors if p not in MODEL_SCORES]
        parts = ["knowledge transfer (probes) and estimators",
                 format_table(self.rows, ["source", "probe_acc", self.truth, "fewshot_std",
                                          *knowledge]), "",
                 "adversarial scores, reference (target) -> source",
                 format_table(self.rows, ["source", *adversarial]), "",
                 f"every score vs {self.truth} ({len(self.rows)} sources, 95% bootstrap CI)",
                 format_correlations(self.correlations)]
        if self.reverse:
            parts += ["", "reverse direction: knowledge transfer between the reference and each "
                      "transferred model\n(model_fit = -affine-fit loss of reference logits from "
                      "source logits) vs measured adversarial transfer",
                      format_table(self.reverse), "",
                      format_correlations(self.reverse_correlations)]
        return "\n".join(parts)


def adv_knowledge_study(reference: nn.Module, sources: Mapping[str, nn.Module],
                        train: ImageDataset, test: ImageDataset, *, n_per_class: int = 20,
                        attack: str | AttackFactory = "pgd", attack_options: dict | None = None,
                        matrix_attack: str | AttackFactory = "pgd",
                        matrix_attack_options: dict | None = None,
                        shots: int = 10, repeats: int = 5, seed: int = 0,
                        layer: str | None = None, layer_input: bool = False,
                        outputs_fn: Callable[..., Outputs] | None = None,
                        show_progress: bool | None = None) -> StudyResult:
    """Run the study (see the module docstring) and return its tables.

    Args:
        reference: a model trained on the target task (the paper's f_T).
        sources: source models by name; their outputs are their own (source) logits.
        train, test: the target task; α uses ``n_per_class`` training images per class,
            the transfer matrix as many test images per class.
        attack, attack_options: the α attack, over the authors' defaults (L∞ PGD on
            predicted labels, ε = 0.1, 50 steps of 0.2·ε, random start).
        matrix_attack, matrix_attack_options: the transfer matrix's attack, over
            :data:`MATRIX_ATTACK_OPTIONS` (L∞ PGD, ε = 0.3, 10 steps).
        layer, layer_input: where the features come from (:mod:`transferability.features`).
        outputs_fn: ``(name, model, data) -> Outputs``, e.g. a zoo's cached extraction.
    """
    if not shots or int(shots) < 1:
        raise ValueError(f"shots: the study's ground truth is a few-shot probe; expected a "
                         f"positive number of samples per class, got {shots!r}")
    timings: dict[str, float] = {}
    outputs_fn = outputs_fn or default_outputs(layer, layer_input)
    matrix_options = matrix_attack_options
    if isinstance(matrix_attack, str):
        matrix_options = with_seed(matrix_attack, {**MATRIX_ATTACK_OPTIONS,
                                                   **(matrix_attack_options or {})}, seed)

    t = time.perf_counter()
    log.info("  estimators, α^(target→source) on %d %s images per class (%s %s), probes",
             n_per_class, train.name, attack, attack_options or "authors' defaults")
    ranking = rank_sources(sources, train, test=test, shots=shots, repeats=repeats, seed=seed,
                           reference=reference, n_per_class=n_per_class, attack=attack,
                           attack_options=attack_options, outputs_fn=outputs_fn,
                           show_progress=show_progress)
    rows, transferred = [], {}
    for row in ranking.rows:
        name = row["source"]
        out_tr = outputs_fn(name, sources[name], train)
        out_te = outputs_fn(name, sources[name], test)
        full = probe_features(out_tr.features, train.y, out_te.features, test.y, seed=seed)
        transferred[name] = with_head(sources[name], full.head, layer=layer,
                                      layer_input=layer_input).eval()
        rows.append({"source": name, "probe_acc": full.accuracy,
                     "fewshot_acc": row["fewshot_acc"], "fewshot_std": row["fewshot_acc_std"],
                     "affine_loss": affine_fit_loss(out_tr.logits, train.y,
                                                    held_out=(out_te.logits, test.y)),
                     **{e: row[e] for e in ranking.estimators}})
        rows[-1][AFFINE] = -rows[-1]["affine_loss"]
    timings["scores"] = time.perf_counter() - t

    predictors = [*ranking.estimators, AFFINE]
    truth = "fewshot_acc"
    correlations = [c.as_dict() for c in correlation_table(
        {p: [r[p] for r in rows] for p in predictors}, [r[truth] for r in rows], seed=seed)]

    t = time.perf_counter()
    probe_set = per_class(test, n_per_class, seed=seed)
    log.info("  transfer matrix: %s %s, reference and transferred models", matrix_attack,
             matrix_options)
    models = {"reference": reference, **transferred}
    matrix = transfer_matrix(models, models, probe_set.x, probe_set.y, attack=matrix_attack,
                             attack_options=matrix_options, show_progress=show_progress)
    timings["matrix"] = time.perf_counter() - t

    ref_logits = extract(reference, probe_set.x, name="reference").logits
    rates = matrix.rates("both_correct")
    i_ref = matrix.surrogates.index("reference")
    reverse = []
    for row in rows:
        name = row["source"]
        j = matrix.victims.index(name)
        src_logits = outputs_fn(name, sources[name], probe_set).logits
        reverse.append({"source": name,
                        "model_fit": -affine_fit_loss(src_logits, ref_logits),
                        "adv_reference_to_source": float(rates[i_ref, j]),
                        "adv_source_to_reference": float(rates[matrix.surrogates.index(name),
                                                               matrix.victims.index("reference")])})
    reverse_correlations = []
    for target in ("adv_reference_to_source", "adv_source_to_reference"):
        c = correlation_table({f"model_fit vs {target}": [r["model_fit"] for r in reverse]},
                              [r[target] for r in reverse], seed=seed)[0]
        reverse_correlations.append(c.as_dict())
    return StudyResult(rows, predictors, truth, correlations, matrix, reverse,
                       reverse_correlations, timings)
