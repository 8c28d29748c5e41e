"""LogME, the log maximum evidence of Bayesian linear regression on features (You et al., 2021).

For each target column y (one-hot column of a class, or a regression target), with
w ~ N(0, α⁻¹I) and y = Fw + ε, ε ~ N(0, β⁻¹I), the log evidence is

    L(α, β) = n/2 log β + D/2 log α − n/2 log 2π − β/2 ‖Fm − y‖² − α/2 ‖m‖² − ½ log|A|,
    A = αI + βFᵀF,  m = βA⁻¹Fᵀy.

It is maximised by MacKay's fixed point γ = Σᵢ βσᵢ/(α + βσᵢ), α ← γ/‖m‖², β ← (n − γ)/‖Fm − y‖²
(You et al., ICML 2021). LogME = mean over columns of L/n; higher = more transferable.

Fast path: with σ the nonzero eigenvalues of FᵀF and p the coordinates of y on the matching
left singular vectors of F, every term is a sum over the spectrum (see :func:`_max_evidence`),
so after one eigendecomposition each iteration costs O(D·K) for all K columns at once. It
needs only FᵀF, Fᵀy, yᵀy and n, so the streaming :class:`LogME` is exact. When n < D the
n × n Gram matrix FFᵀ gives the same σ more cheaply.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float64, check_min_length, check_same_length
from ._common import batch_labels, check_class_counts, class_sums, grow, target_classes
from .registry import register_estimator

__all__ = ["logme", "LogME"]

_RTOL = 1e-10  # convergence of λ = α/β, relative
_MAX_ITER = 1000
_LAM_RANGE = 1e12  # λ is kept within σ_max·[1e-12, 1e12]: the optimum may sit at a boundary
_FLOOR = 1e-250  # keeps ‖m‖² and ‖Fm − y‖² off zero; far below any meaningful value


def _eig(sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of FᵀF (or FFᵀ) with nonzero eigenvalue: those above dim·eps·σ_max."""
    lam, vecs = np.linalg.eigh(sym)
    keep = lam > max(lam[-1], 0.0) * len(lam) * np.finfo(float).eps
    return lam[keep], vecs[:, keep]


def _coordinates(sigma: np.ndarray, vecs: np.ndarray, proj: np.ndarray, yy: np.ndarray, *,
                 gram: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """σ, the squared coordinates p² (r × K) of each target on the left singular vectors of F,
    and the least-squares residual r₀ = ‖y‖² − Σ p² (K).

    From FᵀF's eigenvectors ``proj`` is Fᵀy and p² = (vᵀFᵀy)²/σ; from FFᵀ's (``gram``)
    ``proj`` is y, p = Uᵀy, and r₀ comes from the residual vectors, free of cancellation.
    """
    coords = vecs.T @ proj
    if gram:
        return sigma, coords**2, np.sum((proj - vecs @ coords) ** 2, axis=0)
    p2 = coords**2 / sigma[:, None]
    return sigma, p2, np.maximum(yy - p2.sum(axis=0), 0.0)


def _max_evidence(sigma: np.ndarray, p2: np.ndarray, r0: np.ndarray, yy: np.ndarray, n: int,
                  d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise L(α, β) for every target column at once; return (L/n, α, β), one per column.

    In the spectral basis, with λ = α/β (m depends on λ only):
    γ = Σ σ/(σ+λ), ‖m‖² = Σ σp²/(σ+λ)², ‖Fm − y‖² = r₀ + Σ p²λ²/(σ+λ)² (a sum of
    non-negative terms, so accurate even for a near-exact fit). Iterates until the relative
    change of λ is below 1e-10, or λ reaches the edge of its range.
    """
    if sigma.size == 0:  # F = 0: w drops out, L = n/2 log β − β/2 yᵀy − n/2 log 2π
        beta = n / yy
        return 0.5 * (np.log(beta) - 1 - np.log(2 * np.pi)), np.ones_like(yy), beta
    s = sigma[:, None]
    lo, hi = sigma.max() / _LAM_RANGE, sigma.max() * _LAM_RANGE

    def terms(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = 1.0 / (s + lam)
        gamma = (s * t).sum(axis=0)  # effective number of parameters
        mm = (s * p2 * t * t).sum(axis=0)  # ‖m‖²
        res = np.maximum(r0 + (p2 * (lam * t) ** 2).sum(axis=0), _FLOOR)  # ‖Fm − y‖²
        return gamma, mm, res

    lam = np.ones(p2.shape[1])  # α = β = 1 to start, as in the reference implementation
    for _ in range(_MAX_ITER):
        gamma, mm, res = terms(lam)
        alpha, beta = gamma / np.maximum(mm, _FLOOR), (n - gamma) / res
        new = np.clip(alpha / beta, lo, hi)
        done = np.all(np.abs(new - lam) <= _RTOL * lam)
        lam = new
        if done:
            break
    gamma, mm, res = terms(lam)
    # at the lower edge β → ∞ (an exact fit): keep α's own update and let β = α/λ be huge
    at_edge = lam <= lo
    alpha = gamma / np.maximum(mm, _FLOOR)
    beta = np.where(at_edge, alpha / lam, (n - gamma) / res)
    alpha = np.where(at_edge, alpha, lam * beta)
    evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * res - alpha / 2 * mm
                - 0.5 * ((d - len(sigma)) * np.log(alpha) + np.log(alpha + beta * s).sum(axis=0)))
    return evidence / n, alpha, beta


class _Targets:
    """Target columns y: one-hot class labels (1-D input) or regression targets (N × K)."""

    def __init__(self, targets, *, whole: bool) -> None:
        self.regression = np.ndim(targets) == 2
        if self.regression:
            self.values = as_float64(targets, "targets", ndim=2)
            check_min_length(self.values, "targets", 2 if whole else 1)
            self.width = self.values.shape[1]
        else:
            if whole:
                self.values, self.width = target_classes(targets, "targets")
            else:
                self.values = batch_labels(targets, "targets")
                self.width = int(self.values.max()) + 1

    def __len__(self) -> int:
        return len(self.values)

    def project(self, mat: np.ndarray) -> np.ndarray:
        """matᵀy for every column: K-column matrix of shape (mat columns) × K."""
        if self.regression:
            return mat.T @ self.values
        return class_sums(mat, self.values, self.width).T

    def dense(self) -> np.ndarray:
        """y as an N × K matrix (one-hot for class labels)."""
        if self.regression:
            return self.values
        return np.eye(self.width)[self.values]

    def sq_norms(self) -> np.ndarray:
        """yᵀy per column."""
        if self.regression:
            return np.einsum("ij,ij->j", self.values, self.values)
        return np.bincount(self.values, minlength=self.width).astype(np.float64)


@register_estimator("logme", kind="features")
def logme(features, targets) -> float:
    """LogME of features (N × D) for class labels (N,) or regression targets (N × K).

    A single regression target is passed as shape (N, 1); 1-D targets are class labels.
    """
    f = as_float64(features, "features", ndim=2)
    y = _Targets(targets, whole=True)
    check_same_length(features=f, targets=y)
    n, d = f.shape
    yy = y.sq_norms()
    if n < d:
        spectrum = _coordinates(*_eig(f @ f.T), y.dense(), yy, gram=True)
    else:
        spectrum = _coordinates(*_eig(f.T @ f), y.project(f), yy, gram=False)
    return float(_max_evidence(*spectrum, yy, n, d)[0].mean())


class LogME:
    """Streaming LogME from FᵀF, Fᵀy, yᵀy and n: O(D² + D·K) memory, any number of samples.

    :meth:`compute` equals :func:`logme` on the concatenated batches (to rounding).
    """

    def __init__(self) -> None:
        self._ftf: np.ndarray | None = None
        self._n = 0

    def update(self, features, targets) -> LogME:
        """Add one batch of features (N × D) and class labels (N,) or targets (N × K)."""
        f = as_float64(features, "features", ndim=2)
        y = _Targets(targets, whole=False)
        check_same_length(features=f, targets=y)
        if self._ftf is None:
            self._regression = y.regression
            self._ftf = np.zeros((f.shape[1], f.shape[1]))
            width = y.width if y.regression else 0  # class columns appear as labels do
            self._fty, self._yy = np.zeros((f.shape[1], width)), np.zeros(width)
        elif f.shape[1] != len(self._ftf):
            raise ValueError(f"features: expected {len(self._ftf)} columns as in earlier "
                             f"batches, got {f.shape[1]}")
        if y.regression != self._regression or (y.regression and y.width != len(self._yy)):
            raise ValueError("targets: every batch must have the same kind and number of "
                             "target columns as the first")
        width = max(y.width, len(self._yy))
        self._ftf += f.T @ f
        self._fty = grow(self._fty, (f.shape[1], width))
        self._fty[:, : y.width] += y.project(f)
        self._yy = grow(self._yy, (width,))
        self._yy[: y.width] += y.sq_norms()
        self._n += len(y)
        return self

    def per_target(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(L/n, α, β) at the maximum, one entry per class or regression column."""
        if self._ftf is None:
            raise ValueError("features: no data; call update() first")
        if not self._regression:
            check_class_counts(self._yy.astype(np.int64), "targets")
        spectrum = _coordinates(*_eig(self._ftf), self._fty, self._yy, gram=False)
        return _max_evidence(*spectrum, self._yy, self._n, len(self._ftf))

    def compute(self) -> float:
        """LogME of all batches so far."""
        return float(self.per_target()[0].mean())
