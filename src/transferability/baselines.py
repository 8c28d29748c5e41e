"""Target-blind baselines and the mean-rank ensemble, scored beside the estimators.

Critiques of transferability estimation (Agostinelli et al., ECCV 2022; Ibrahim et al.,
2022) find that on model zoos a ranking that never looks at the target — by model size,
by the model's accuracy on its own source task — rivals most estimators. So every ranking
reports them as scores too (higher = predicted more transferable):

- ``params``: the number of parameters;
- ``source_acc``: the test accuracy on the model's own source task (zoo models carry it in
  ``model.meta["metrics"]["accuracy"]``, read by :func:`model_accuracy`; for other models
  the user gives it);
- ``feature_dim``: the dimension of the features the estimators see.

The **ensemble** score of a source is the mean, over a chosen set of scores, of its rank
among the sources (1 = lowest), so scores on different scales combine without weights.
The benchmark picks the set by leave-one-target-out (:func:`loto_choice`): never on the
target being scored. ``rank`` without a set takes :data:`DEFAULT_ENSEMBLE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata
from torch import nn

from ._deprecated import old_spellings

__all__ = ["BASELINES", "ENSEMBLE", "parameter_count", "model_accuracy", "baseline_scores",
           "mean_rank", "loto_choice", "DEFAULT_ENSEMBLE", "ensemble_names"]

BASELINES: tuple[str, ...] = ("params", "source_acc", "feature_dim")
ENSEMBLE = "ensemble"
#: The ensemble of ``rank --ensemble`` with no names (or ``default``): what the benchmark's
#: leave-one-target-out rule picks for a target outside it, the three best mean τ over all
#: of the quick benchmark's targets (docs/estimators.md gives the run).
DEFAULT_ENSEMBLE: tuple[str, ...] = ("h_score_shrinkage", "logme", "nleep")


def parameter_count(model: nn.Module) -> int:
    """The number of parameters of ``model`` (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def model_accuracy(meta: Mapping | None) -> float | None:
    """The test accuracy on its own source task that a model's ``meta`` (or a stored
    ``train`` job's value) records: ``meta["source_acc"]`` where a user gave it, else the
    zoo's ``meta["metrics"]["accuracy"]`` (``"test_acc"`` in checkpoints and stored results
    written before the rename), else None. The one reader of that number."""
    meta = meta or {}
    metrics = meta.get("metrics") or {}
    renamed = {s.new: metrics[old] for old, s in old_spellings("metric").items()
               if old in metrics}  # written before the rename
    value = meta.get("source_acc", {**renamed, **metrics}.get("accuracy"))
    return None if value is None else float(value)


def baseline_scores(model: nn.Module, feature_dim: int,
                    source_acc: float | None = None) -> dict[str, float | int | None]:
    """The three baselines of one model (the counts as integers); ``source_acc`` overrides
    what its meta records."""
    acc = source_acc if source_acc is not None else model_accuracy(getattr(model, "meta", None))
    return {"params": parameter_count(model), "source_acc": acc,
            "feature_dim": int(feature_dim)}


def ensemble_names(names) -> list[str] | None:
    """``names`` as a list; :data:`DEFAULT_ENSEMBLE` for ``"default"``, ``["default"]`` or
    ``[]`` (the option given without names); None stays None (no ensemble)."""
    if names is None:
        return None
    names = [names] if isinstance(names, str) else list(names)
    return list(DEFAULT_ENSEMBLE) if names in ([], ["default"]) else names


def mean_rank(rows: Sequence[Mapping], names: Sequence[str]) -> list[float]:
    """Each row's mean rank over the scores ``names`` (average ranks on ties; higher =
    better). Raises ValueError when a name is missing from a row."""
    if not names:
        raise ValueError("names: the ensemble needs at least one score")
    missing = [n for n in names if any(r.get(n) is None for r in rows)]
    if missing:
        raise ValueError(f"names: scores {missing} are missing for some sources")
    ranks = np.stack([rankdata([float(r[n]) for r in rows]) for n in names])
    return [float(v) for v in ranks.mean(axis=0)]


def loto_choice(taus: Mapping[str, Sequence[float]], held_out: int, size: int = 3) -> list[str]:
    """The ``size`` scores with the highest mean τ over every target but ``held_out``
    (``taus[score][t]`` is the score's weighted τ on target t; NaN counts as −1)."""
    def mean_without(values):
        kept = [v for t, v in enumerate(values) if t != held_out]
        return float(np.mean(np.nan_to_num(kept, nan=-1.0))) if kept else -1.0

    return sorted(taus, key=lambda s: (-mean_without(taus[s]), s))[:size]
