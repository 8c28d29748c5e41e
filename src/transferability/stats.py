"""Ranking statistics: how well estimator scores agree with measured transfer across models.

Correlations (Pearson, Spearman, Kendall τ-b, weighted Kendall τ), bootstrap confidence
intervals over models, and the model-selection view: did the top-scored model win (top-1
hit), and how much does picking it cost (regret). A correlation is NaN where it is undefined,
e.g. when every model has the same score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np
from scipy import stats as _st

from ._results import Result
from ._validation import (
    as_float64,
    check_count,
    check_fraction,
    check_min_length,
    check_same_length,
)

__all__ = ["pearson", "spearman", "kendall", "weighted_tau", "bootstrap_ci", "top1_hit",
           "regret", "CorrelationRow", "correlation_table", "Claim", "claim",
           "bootstrap_difference", "wilson_interval", "undefined_correlation"]


def _pair(x, y, names: tuple[str, str] = ("x", "y")) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_float64(x, names[0], ndim=1), as_float64(y, names[1], ndim=1)
    check_same_length(**{names[0]: a, names[1]: b})
    check_min_length(a, names[0], 2)
    return a, b


def _quiet(fn: Callable, a: np.ndarray, b: np.ndarray) -> float:
    """``fn(a, b)`` as a float, NaN (without a warning) where it is undefined."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(a, b).statistic)


def pearson(x, y) -> float:
    """Pearson's linear correlation r (``scipy.stats.pearsonr``)."""
    return _quiet(_st.pearsonr, *_pair(x, y))


def spearman(x, y) -> float:
    """Spearman's ρ: Pearson's r of the ranks, ties averaged (``scipy.stats.spearmanr``)."""
    return _quiet(_st.spearmanr, *_pair(x, y))


def kendall(x, y) -> float:
    """Kendall's τ-b (``scipy.stats.kendalltau``)."""
    return _quiet(_st.kendalltau, *_pair(x, y))


def weighted_tau(x, y) -> float:
    """Weighted Kendall τ (Vigna 2015; ``scipy.stats.weightedtau`` defaults).

    Swaps near the top count more (hyperbolic weight 1/(r+1)), averaged over ranking by x
    and by y: the metric of the model-selection literature (e.g. You et al. 2021).
    """
    return _quiet(_st.weightedtau, *_pair(x, y))


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of every row pair of two B × n arrays; NaN for constant rows."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    ok = (np.ptp(a, axis=1) > 0) & (np.ptp(b, axis=1) > 0)
    r = np.full(len(a), np.nan)
    num, den = (a * b).sum(axis=1), np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    r[ok] = np.clip(num[ok] / den[ok], -1.0, 1.0)
    return r


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _pearson_rows(_st.rankdata(a, axis=1), _st.rankdata(b, axis=1))


def _sign_rows(a: np.ndarray) -> np.ndarray:
    """sgn(aᵢ − aⱼ) of every row of a B × n array, as B × n × n int8."""
    return (a[:, :, None] > a[:, None, :]).view(np.int8) - \
        (a[:, :, None] < a[:, None, :]).view(np.int8)


def _ranked_tau(a: np.ndarray, b: np.ndarray, agree: np.ndarray, ties_a: np.ndarray,
                ties_b: np.ndarray) -> np.ndarray:
    """Weighted τ of every row pair, ranking elements by decreasing (a, b) lexicographically.

    Vigna (2015): τ_w = Σ_{i<j} w_ij sgn(aᵢ−aⱼ) sgn(bᵢ−bⱼ) / √(Σ w_ij [aᵢ≠aⱼ] · Σ w_ij [bᵢ≠bⱼ])
    with additive hyperbolic weights w_ij = 1/(rᵢ+1) + 1/(rⱼ+1). As the sign matrices are
    symmetric, Σ_{i,j} (wᵢ + wⱼ) S_ij = 2 Σᵢ wᵢ Σⱼ S_ij: each sum is the weights times the
    row sums ``agree`` (of sgn·sgn), ``ties_a`` and ``ties_b`` (of the non-zero signs),
    which both ranking directions share.
    """
    order = np.lexsort((-b, -a), axis=1)  # rank 0 = largest a, ties by largest b
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(a.shape[1])[None, :].repeat(len(a), 0), axis=1)
    w = 1.0 / (rank + 1.0)
    num = (w * agree).sum(axis=1)
    den = np.sqrt((w * ties_a).sum(axis=1) * (w * ties_b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _weighted_tau_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``scipy.stats.weightedtau`` (defaults: rank=True) of every row pair of B × n arrays:
    O(n²) int8 work per row, vectorised over rows (the bootstrap's resamples)."""
    sa, sb = _sign_rows(a), _sign_rows(b)
    agree = (sa * sb).sum(axis=2, dtype=np.int64)
    ties_a = np.abs(sa).sum(axis=2, dtype=np.int64)
    ties_b = np.abs(sb).sum(axis=2, dtype=np.int64)
    return (_ranked_tau(a, b, agree, ties_a, ties_b) + _ranked_tau(b, a, agree, ties_b, ties_a)) / 2


_BATCHED: dict[Callable, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    pearson: _pearson_rows, spearman: _spearman_rows, weighted_tau: _weighted_tau_rows}


def bootstrap_ci(score_fn: Callable[[np.ndarray, np.ndarray], float], x, y, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``score_fn(x, y)``, resampling models with replacement.

    Each of ``n_boot`` resamples draws len(x) models (pairs (xᵢ, yᵢ)) with replacement.
    Resamples where the statistic is undefined (NaN, e.g. all drawn models share one score)
    are skipped and the interval comes from the rest; (NaN, NaN) if none is left. Pearson
    and Spearman run vectorised over resamples; any other ``score_fn`` runs once per
    resample. The same ``seed`` and number of models give the same resamples.
    """
    a, b = _pair(x, y)
    n_boot, level = check_count(n_boot, "n_boot"), check_fraction(level, "level")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    if score_fn in _BATCHED:
        values = _BATCHED[score_fn](a[idx], b[idx])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.array([score_fn(a[i], b[i]) for i in idx], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def top1_hit(scores, truth) -> bool:
    """Whether the top-scored model (first one on ties) is a best model by ``truth``."""
    s, t = _pair(scores, truth, ("scores", "truth"))
    return bool(t[np.argmax(s)] == t.max())


def regret(scores, truth) -> float:
    """max(truth) − truth of the top-scored model: what picking by ``scores`` loses, ≥ 0."""
    s, t = _pair(scores, truth, ("scores", "truth"))
    return float(t.max() - t[np.argmax(s)])


@dataclass(frozen=True)
class CorrelationRow(Result):
    """One estimator's agreement with measured transfer; ``*_low``/``*_high`` bound the CI."""

    estimator: str
    weighted_tau: float
    weighted_tau_low: float
    weighted_tau_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    pearson: float
    pearson_low: float
    pearson_high: float
    top1: bool
    regret: float

    def as_dict(self) -> dict[str, object]:
        """The fields as a flat row, for tables."""
        return asdict(self)


def undefined_correlation(name: str, note: str) -> dict[str, object]:
    """A correlation row that is undefined (NaN, shown ``n/a``), with ``note`` saying why."""
    return {**{f.name: float("nan") for f in fields(CorrelationRow)}, "estimator": name,
            "top1": None, "note": note}


def wilson_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n`` (e.g. an accuracy)."""
    n = check_count(n, "n")
    if not 0 <= correct <= n:
        raise ValueError(f"correct: expected 0..{n}, got {correct}")
    z = float(_st.norm.ppf((1 + check_fraction(level, "level")) / 2))
    p, z2 = correct / n, z * z / n
    centre, half = (p + z2 / 2) / (1 + z2), z * np.sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def correlation_table(scores: Mapping[str, Sequence[float]], truth, *, n_boot: int = 1000,
                      level: float = 0.95, seed: int = 0) -> list[CorrelationRow]:
    """One :class:`CorrelationRow` per estimator, from its scores of the models and ``truth``.

    ``scores[name][i]`` and ``truth[i]`` belong to model i. Every estimator's intervals use
    the same bootstrap resamples of models (same ``seed``), so rows are directly comparable.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores: expected a non-empty mapping of estimator name to scores")
    rows = []
    for name, values in scores.items():
        s, t = _pair(values, truth, (f"scores[{name!r}]", "truth"))
        cis = {fn.__name__: bootstrap_ci(fn, s, t, n_boot, level, seed)
               for fn in (weighted_tau, spearman, pearson)}
        rows.append(CorrelationRow(
            name,
            weighted_tau(s, t), *cis["weighted_tau"],
            spearman(s, t), *cis["spearman"],
            pearson(s, t), *cis["pearson"],
            top1_hit(s, t), regret(s, t)))
    return rows


HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim(Result):
    """A claim "the difference is > 0" decided from an interval, never from a point mean.

    ``verdict`` is ``"holds"`` when the whole interval lies above 0, ``"does not hold"``
    when it lies at or below 0, and ``"inconclusive"`` when it crosses 0, or when there are
    fewer than ``min_n`` differences (seeds, images) to decide from. ``interval`` says how
    ``[low, high]`` was formed: ``"t"`` or ``"bootstrap"``.
    """

    statement: str
    difference: float
    low: float
    high: float
    n: int
    interval: str
    verdict: str

    schema: ClassVar[int] = 2
    renamed: ClassVar[dict] = {"method": "interval"}

    def __str__(self) -> str:
        bounds = [self.low, self.high]  # NaN in memory, None after a strict-JSON file
        interval = (f"{self.interval} 95% CI [{self.low:+.3f}, {self.high:+.3f}]"
                    if None not in bounds and np.isfinite(bounds).all() else "no interval")
        difference = "n/a" if self.difference is None else f"{self.difference:+.3f}"
        return f"{self.statement}: {self.verdict} (difference {difference}, {interval}, n={self.n})"

    @classmethod
    def from_interval(cls, statement: str, difference: float, low: float, high: float, n: int,
                      interval: str, *, min_n: int = 3) -> Claim:
        """The verdict of an interval ``[low, high]`` already formed (a bootstrap interval of
        a correlation, say), by the rule of the class docstring."""
        if n < min_n or not np.isfinite([low, high]).all():
            verdict = INCONCLUSIVE
        elif low > 0:
            verdict = HOLDS
        elif high <= 0:
            verdict = DOES_NOT_HOLD
        else:
            verdict = INCONCLUSIVE
        return cls(statement, float(difference), float(low), float(high), int(n), interval,
                   verdict)


def claim(statement: str, differences, *, interval: str = "t", level: float = 0.95,
          n_boot: int = 2000, min_n: int = 3, seed: int = 0) -> Claim:
    """Decide ``statement`` ("mean difference > 0") from paired ``differences``.

    ``differences[i]`` is the claimed-better quantity minus the other one for seed (or
    image) i. ``interval="t"``: Student-t interval of the mean (few seeds);
    ``interval="bootstrap"``: percentile bootstrap of the mean (many images). NaN differences
    are refused; fewer than ``min_n`` of them give an inconclusive verdict with a NaN interval
    when none can be formed.
    """
    from ._validation import check_choice

    d = as_float64(differences, "differences", ndim=1)
    if not np.isfinite(d).all():
        raise ValueError("differences: contains NaN or inf values")
    interval = check_choice(interval, "interval", ("t", "bootstrap"))
    level = check_fraction(level, "level")
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        low = high = float("nan")
    elif interval == "t":
        half = float(_st.t.ppf((1 + level) / 2, n - 1) * d.std(ddof=1) / np.sqrt(n))
        low, high = mean - half, mean + half
    else:
        idx = np.random.default_rng(seed).integers(0, n, size=(check_count(n_boot, "n_boot"), n))
        low, high = (float(v) for v in np.quantile(d[idx].mean(axis=1),
                                                    [(1 - level) / 2, (1 + level) / 2]))
    return Claim.from_interval(statement, mean, low, high, n, interval, min_n=min_n)


def bootstrap_difference(score_fn: Callable[[np.ndarray, np.ndarray], float], x_a, x_b, y,
                         n_boot: int = 1000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float, float]:
    """``score_fn(x_a, y) − score_fn(x_b, y)`` and its percentile bootstrap interval, both
    statistics on the same resamples of models (a paired comparison of two scores)."""
    a, t = _pair(x_a, y)
    b, _ = _pair(x_b, y)
    n_boot, level = check_count(n_boot, "n_boot"), check_fraction(level, "level")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    rows = _BATCHED.get(score_fn) or (lambda p, q: np.array([score_fn(u, v) for u, v
                                                              in zip(p, q, strict=True)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = rows(a[idx], t[idx]) - rows(b[idx], t[idx])
        point = float(score_fn(a, t) - score_fn(b, t))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return point, float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return point, float(low), float(high)
