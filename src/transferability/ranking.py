"""Rank source models for a target task: estimator scores, measured transfer, agreement.

``rank_sources`` runs one feature-extraction pass per source on the target data, scores
every requested estimator from it, optionally measures the real transfer (linear probe,
full-data or few-shot) and reports each estimator's agreement with it (weighted Kendall τ,
Spearman, Pearson with bootstrap CIs, top-1 hit, regret; :mod:`transferability.stats`).
The target-blind baselines of :mod:`transferability.baselines` (parameter count, source
accuracy, feature dimension) are scored and validated beside the estimators, and so is the
mean-rank ``ensemble`` of a chosen set of scores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from ._results import Result
from ._threads import limit_threads
from ._validation import check_choice, check_int, check_seed
from .attacks import AttackFactory, AttackSpec
from .baselines import BASELINES, ENSEMBLE, baseline_scores, ensemble_names, mean_rank
from .data.dataset import ImageDataset
from .data.tasks import check_per_class, per_class
from .estimators import check_estimator_data, get_estimator, list_estimators, score
from .features import Outputs
from .features import outputs_fn as default_outputs
from .report import format_table
from .stats import correlation_table, undefined_correlation, wilson_interval
from .transfer import probe_features
from .utils import progress

__all__ = ["RankResult", "rank_sources", "output_estimators", "ReferenceAccuracy",
           "reference_accuracy"]

log = logging.getLogger("transferability")

OutputsFn = Callable[[str, nn.Module, ImageDataset], Outputs]


def output_estimators() -> list[str]:
    """Estimators computed from a source's outputs on the target (no attack needed)."""
    return [n for n in list_estimators() if get_estimator(n).inputs != "models"]


@dataclass(frozen=True)
class ReferenceAccuracy(Result):
    """A reference model's accuracy on held-out target images, with its 95% Wilson interval.

    The adversarial scores (α, gradient alignment, attribution) compare a source with a
    model of the target task; they are reported only for a reference that has learned it:
    the interval's lower bound above chance, 1 / ``classes``. Otherwise :attr:`note` says
    why they are ``n/a``."""

    correct: int
    n: int
    classes: int
    low: float
    high: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def learned(self) -> bool:
        return self.low > 1 / self.classes

    @property
    def note(self) -> str | None:
        """Why the adversarial scores are withheld (None when the reference has learned)."""
        if self.learned:
            return None
        return (f"the reference has not learned the target: its held-out accuracy {self} is "
                f"not above chance (1/{self.classes}); train it longer (--reference-epochs) "
                "or give a better one (--reference MODEL)")

    def __str__(self) -> str:
        return (f"{self.accuracy:.3f} [95% CI {self.low:.3f}, {self.high:.3f}] "
                f"({self.correct}/{self.n})")

    def describe(self) -> str:
        """One line for a report: the accuracy, its interval and chance."""
        return (f"reference: held-out accuracy {self}, chance {1 / self.classes:.3f}"
                + ("" if self.learned else " (not learned: adversarial scores n/a)"))

    def withhold(self, rows: Sequence[dict], names: Sequence[str]) -> None:
        """Set the scores ``names`` of ``rows`` to NaN (``n/a``) if the reference has not
        learned, with a warning; the one rule of the ranking and the study."""
        if self.learned or not names:
            return
        log.warning("warning: %s (n/a: %s)", self.note, ", ".join(names))
        for row in rows:
            row.update(dict.fromkeys(names, float("nan")))


def reference_accuracy(reference: nn.Module, data: ImageDataset) -> ReferenceAccuracy:
    """``reference``'s accuracy on ``data`` (held-out target images), with its interval."""
    from .features import extract

    logits = extract(reference, data.x, name="reference").logits
    correct = int((logits.argmax(1).cpu() == data.y.cpu()).sum())
    return ReferenceAccuracy(correct, len(data), data.num_classes,
                             *wilson_interval(correct, len(data)))


@dataclass(frozen=True)
class RankResult(Result):
    """Per-source scores (``rows``) and, when validated, each estimator's (and baseline's)
    agreement with the measured transfer column ``truth``."""

    rows: list[dict]
    estimators: list[str]
    truth: str | None = None
    correlations: list[dict] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    reference: ReferenceAccuracy | None = None

    def sorted_by(self, column: str) -> list[dict]:
        def key(row):
            value = row[column]
            return -math.inf if value is None or math.isnan(value) else value
        return sorted(self.rows, key=key, reverse=True)

    def format(self) -> str:
        cols = ["source", *self.estimators, *self.baselines,
                *([self.truth] if self.truth else [])]
        text = format_table(self.sorted_by(self.truth or self.estimators[0]), cols)
        if self.reference is not None:
            text += "\n" + self.reference.describe()
            if self.reference.note:
                adversarial = [n for n in self.estimators if get_estimator(n).inputs == "models"]
                text += f"\n{', '.join(adversarial)}: n/a, {self.reference.note}"
        if self.correlations:
            text += f"\n\nagreement with {self.truth}\n{format_correlations(self.correlations)}"
        return text


def format_correlations(rows: Sequence[dict]) -> str:
    """The correlation block: each statistic with its bootstrap CI; an undefined one is
    ``n/a``, and a row's ``note`` (why it is undefined) follows the table."""
    def ci(r, k):
        if math.isnan(r[k]):
            return "n/a"
        return f"{r[k]:+.2f} [{r[k + '_low']:+.2f}, {r[k + '_high']:+.2f}]"

    table = [{"score": r["estimator"], "weighted tau [CI]": ci(r, "weighted_tau"),
              "spearman [CI]": ci(r, "spearman"), "pearson [CI]": ci(r, "pearson"),
              "top1": r["top1"], "regret": r["regret"]} for r in rows]
    notes = [f"{r['estimator']}: n/a, {r['note']}" for r in rows if r.get("note")]
    return "\n".join([format_table(table), *notes])


def _estimator_names(estimators, reference, ensemble) -> tuple[list[str], list[str], list | None]:
    """The estimators to score (the ensemble's members among them), the adversarial ones
    among them, and the ensemble's members (None: no ensemble)."""
    if estimators is None:
        names = output_estimators() + (list_estimators("models") if reference is not None else [])
    else:
        names = [check_choice(n, "estimators", list_estimators()) for n in estimators]
    adversarial = [n for n in names if get_estimator(n).inputs == "models"]
    if adversarial and reference is None:
        raise ValueError(f"reference: the adversarial estimators {adversarial} need a reference "
                         "model trained on the target task")
    ensemble = ensemble_names(ensemble)
    if ensemble is not None:
        ensemble = [check_choice(n, "ensemble", [*list_estimators(), *BASELINES])
                    for n in ensemble]
        names += [n for n in ensemble if n in list_estimators() and n not in names
                  and get_estimator(n).inputs != "models"]  # members are scored
    return names, adversarial, ensemble


def _source_rows(sources, train, test, names, adversarial, given_acc, *, outputs_fn, shots,
                 repeats, seed, truth, show_progress) -> list[dict]:
    """One row per source: its baselines, its output estimators' scores and, with a test
    set, its probe accuracy (``truth``)."""
    rows = []
    for name, model in progress(sources.items(), total=len(sources), desc="rank",
                                enabled=show_progress):
        out = outputs_fn(name, model, train)
        row = {"source": name}
        row.update(baseline_scores(model, out.features.shape[1], given_acc.get(name)))
        out_test = None if test is None else outputs_fn(name, model, test)
        with limit_threads(out.features.numel()):  # small linear algebra: no thread storms
            row.update({n: score(n, out, train.y) for n in names if n not in adversarial})
            if out_test is not None:
                probe = probe_features(out.features, train.y, out_test.features, test.y,
                                       shots=shots, repeats=repeats, seed=seed)
                row[truth] = probe.accuracy
                row[truth + "_std"] = probe.accuracy_std
        rows.append(row)
    return rows


def _correlations(rows, names, baselines, truth, accuracy, adversarial, ensemble,
                  seed) -> list[dict]:
    """Every score's agreement with ``truth``; the withheld ones (a reference at chance)
    are undefined, with the reason."""
    withheld = [] if accuracy is None or accuracy.learned else list(adversarial)
    if withheld and ensemble is not None and set(withheld) & set(ensemble):
        withheld.append(ENSEMBLE)  # an ensemble of withheld scores is withheld too
    defined = {n: [r[n] for r in rows] for n in [*names, *baselines] if n not in withheld}
    correlations = [c.as_dict() for c in correlation_table(
        defined, [r[truth] for r in rows], seed=seed)] if defined else []
    return correlations + [undefined_correlation(n, accuracy.note) for n in withheld]


def rank_sources(sources: Mapping[str, nn.Module], train: ImageDataset, *,
                 estimators: Sequence[str] | None = None, test: ImageDataset | None = None,
                 shots: int | None = None, repeats: int = 1, seed: int = 0,
                 reference: nn.Module | None = None,
                 reference_data: ImageDataset | None = None, alpha_per_class: int = 20,
                 attack: str | AttackSpec | AttackFactory = "pgd",
                 layer: str | None = None, layer_input: bool = False,
                 outputs_fn: OutputsFn | None = None,
                 source_accuracy: Mapping[str, float] | None = None,
                 ensemble: Sequence[str] | None = None,
                 show_progress: bool | None = None) -> RankResult:
    """Score every model in ``sources`` on the target ``train`` set.

    Args:
        estimators: registered names (default: every output estimator, plus the adversarial
            ones when a ``reference`` is given).
        test: with a target test set, also measure the linear-probe accuracy (``shots``
            per class, averaged over ``repeats`` draws) and correlate every estimator with it.
        reference: a model trained on the target task, needed by the adversarial
            (``"models"``) estimators; they run on ``alpha_per_class`` training images per
            class, α with ``attack`` (an :class:`~transferability.attacks.AttackSpec` or a
            registered name over the authors' defaults, see
            :func:`~transferability.adversarial.alpha_attack`; its seed is ``seed`` unless
            it gives one). They are ``n/a`` (NaN, with the reason in ``reference``) when the
            reference has not learned the target (:class:`ReferenceAccuracy`, measured on
            ``reference_data``: held-out target images; default ``test``, else ``train``).
        layer, layer_input: where the features come from (:mod:`transferability.features`).
        outputs_fn: ``(name, model, data) -> Outputs``, e.g. a zoo's cached extraction.
        source_accuracy: each source's accuracy on its own source task, for the
            ``source_acc`` baseline (default: what ``model.meta`` records; a baseline
            unknown for some source is left out).
        ensemble: scores (estimators or baselines) whose mean rank becomes the
            ``ensemble`` score (:func:`~transferability.baselines.mean_rank`); ``"default"``
            (or an empty list) for :data:`~transferability.baselines.DEFAULT_ENSEMBLE`. Its
            estimators are scored even when ``estimators`` leaves them out.
    """
    from .adversarial import adversarial_scores

    seed = check_seed(seed)
    alpha_per_class = check_int(alpha_per_class, "alpha_per_class")
    if not isinstance(sources, Mapping) or not sources:
        raise ValueError("sources: expected a non-empty mapping from name to model")
    names, adversarial, ensemble = _estimator_names(estimators, reference, ensemble)
    given_acc = dict(source_accuracy or {})
    unknown = sorted(set(given_acc) - set(sources))
    if unknown:
        raise ValueError(f"source_accuracy: no source(s) {unknown}; the sources are "
                         f"{sorted(sources)}")
    check_estimator_data(names, train.class_counts(), "train")
    accuracy = None
    if adversarial:  # checked, and the reference measured, before any source runs
        check_per_class(alpha_per_class, "alpha_per_class", train)
        if isinstance(attack, str | AttackSpec):  # the seed laid under the spec's own
            attack = AttackSpec.of(attack).with_defaults({"seed": seed})
        held_out = next(d for d in (reference_data, test, train) if d is not None)
        accuracy = reference_accuracy(reference, held_out)
        log.info("  %s", accuracy.describe())
    truth = None if test is None else ("fewshot_acc" if shots else "probe_acc")
    rows = _source_rows(sources, train, test, names, adversarial, given_acc,
                        outputs_fn=outputs_fn or default_outputs(layer, layer_input),
                        shots=shots, repeats=repeats, seed=seed, truth=truth,
                        show_progress=show_progress)
    if accuracy is not None and not accuracy.learned:
        accuracy.withhold(rows, adversarial)
    elif adversarial:
        probe_set = per_class(train, alpha_per_class, seed=seed)
        adv = adversarial_scores(reference, sources, probe_set.x, probe_set.y, names=adversarial,
                                 attack=attack, show_progress=show_progress)
        for row in rows:
            row.update(adv[row["source"]])
    baselines = [b for b in BASELINES if all(r[b] is not None for r in rows)]
    if ensemble is not None:
        for row, value in zip(rows, mean_rank(rows, ensemble), strict=True):
            row[ENSEMBLE] = value
        baselines.append(ENSEMBLE)
    correlations = [] if truth is None or len(rows) < 3 else _correlations(
        rows, names, baselines, truth, accuracy, adversarial, ensemble, seed)
    return RankResult(rows, names, truth, correlations, baselines, accuracy)
