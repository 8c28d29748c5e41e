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

Scale: L is unchanged by F → cF with α → c²α, and a target y → ty shifts L/n by −log t (with
α, β → α/t², β/t²). So F and each regression column are divided by a power of two near their
largest magnitude (exact), and the result is finite for any finite input.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_min_length, check_same_length
from ._common import (
    as_features,
    batch_labels,
    check_class_counts,
    class_sums,
    finite,
    grow,
    nonzero_eigh,
    pow2_scale,
    target_classes,
)
from .registry import register_estimator

__all__ = ["logme", "LogME"]

_RTOL = 1e-10  # convergence of λ = α/β, relative
_MAX_ITER = 1000
_LAM_RANGE = 1e12  # λ is kept within σ_max·[1e-12, 1e12]: the optimum may sit at a boundary
_FLOOR = 1e-250  # keeps ‖m‖² and ‖Fm − y‖² off zero; far below any meaningful value


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


def _max_evidence(sigma: np.ndarray, p2: np.ndarray, r0: np.ndarray, yy: np.ndarray,
                  n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise L(α, β) for every target column at once; return (L/n, α, β), one per column.

    In the spectral basis, with λ = α/β (m depends on λ only):
    γ = Σ σ/(σ+λ), ‖m‖² = Σ σp²/(σ+λ)², ‖Fm − y‖² = r₀ + Σ p²λ²/(σ+λ)² (a sum of
    non-negative terms, so accurate even for a near-exact fit). Iterates until the relative
    change of λ is below 1e-10, or λ reaches the edge of its range. For fixed λ the best β is
    n/g, g = ‖Fm − y‖² + λ‖m‖² = r₀ + Σ p²λ/(σ+λ), and then
    L/n = ½(log β − 1 − log 2π) + (r log λ − Σ log(σ+λ))/(2n)   (r = number of σ; D drops out).
    The maximum may lie at an edge of λ's range (β → ∞: an exact fit, possible when n ≤ D;
    α → ∞: useless features), which the fixed point only creeps towards, so the best of the
    fixed point and both edges is returned; at an edge L is extrapolated to its limit,
    2L(λ) − L(2λ) as λ → 0 and 2L(λ) − L(λ/2) as λ → ∞ (error O(λ²) and O(1/λ²)), with α, β
    those at λ.
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

    def profile(lam: np.ndarray) -> np.ndarray:
        beta = n / np.maximum(r0 + (p2 * (lam / (s + lam))).sum(axis=0), _FLOOR)
        log_det = len(sigma) * np.log(lam) - np.log(s + lam).sum(axis=0)
        return np.stack([0.5 * (np.log(beta) - 1 - np.log(2 * np.pi)) + log_det / (2 * n),
                         lam * beta, beta])

    lam = np.ones(p2.shape[1])  # α = β = 1 to start, as in the reference implementation
    for _ in range(_MAX_ITER):
        gamma, mm, res = terms(lam)
        alpha, beta = gamma / np.maximum(mm, _FLOOR), (n - gamma) / res
        new = np.clip(alpha / beta, lo, hi)
        done = np.all(np.abs(new - lam) <= _RTOL * lam)
        lam = new
        if done:
            break

    def edge(at: float, nearer: float) -> np.ndarray:  # L extrapolated to the limit (Richardson)
        out = profile(np.full(lam.size, at))
        out[0] = 2 * out[0] - profile(np.full(lam.size, nearer))[0]
        return out

    candidates = np.stack([profile(lam), edge(lo, 2 * lo), edge(hi, hi / 2)])
    evidence, alpha, beta = candidates[candidates[:, 0].argmax(axis=0), :, np.arange(lam.size)].T
    return evidence, alpha, beta


class _Targets:
    """Target columns y: one-hot ``target_labels`` or ``target_values`` (N × K), the latter
    divided per column by ``scale`` (a power of two; 1 for class columns)."""

    def __init__(self, target_labels, target_values, *, whole: bool) -> None:
        if (target_labels is None) == (target_values is None):
            raise ValueError("target_labels, target_values: give exactly one, class labels (N,) "
                             "or regression targets (N × K)")
        self.regression = target_values is not None
        self.name = "target_values" if self.regression else "target_labels"
        if self.regression:
            values = as_features(target_values, self.name)
            check_min_length(values, self.name, 2 if whole else 1)
            self.scale = pow2_scale(values, axis=0)
            self.values, self.width = values / self.scale, values.shape[1]
        else:
            if whole:
                self.values, self.width = target_classes(target_labels)
            else:
                self.values = batch_labels(target_labels)
                self.width = int(self.values.max()) + 1
            self.scale = np.ones(self.width)

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


def _evidence(sym: np.ndarray, proj: np.ndarray, yy: np.ndarray, n: int, *,
              gram: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L/n, α, β) per column from FᵀF and Fᵀy, or (``gram``) FFᵀ and y."""
    if np.any(yy == 0):
        raise ValueError(f"target_values: column(s) {np.flatnonzero(yy == 0).tolist()} are all "
                         "zero; an exact fit has unbounded evidence")
    spectrum = _coordinates(*nonzero_eigh(sym), proj, yy, gram=gram)
    return _max_evidence(*spectrum, yy, n)


@register_estimator("logme", inputs="features")
def logme(features, target_labels=None, *, target_values=None) -> float:
    """LogME of features (N × D) for class ``target_labels`` (N,) or regression
    ``target_values`` (N × K, one column per target); exactly one of the two."""
    f = as_features(features)
    y = _Targets(target_labels, target_values, whole=True)
    check_same_length(features=f, **{y.name: y})
    f = f / pow2_scale(f)
    n, d = f.shape
    yy = y.sq_norms()
    if n < d:
        evidence = _evidence(f @ f.T, y.dense(), yy, n, gram=True)[0]
    else:
        evidence = _evidence(f.T @ f, y.project(f), yy, n, gram=False)[0]
    return finite(np.mean(evidence - np.log(y.scale)), "features")


class LogME:
    """Streaming LogME from FᵀF, Fᵀy, yᵀy and n: O(D² + D·K) memory, any number of samples.

    The sums are kept for F/s and y/t, s and t powers of two near the largest magnitudes so
    far (t per regression column), rescaled exactly when a batch raises them.
    :meth:`compute` equals :func:`logme` on the concatenated batches (to rounding; where n ≤ D
    and a column is fit exactly, r₀ = yᵀy − Σp² cancels and only about 1e-7 is left).
    """

    def __init__(self) -> None:
        self._ftf: np.ndarray | None = None
        self._n = 0

    def update(self, features, target_labels=None, *, target_values=None) -> LogME:
        """Add one batch of features (N × D) and class ``target_labels`` (N,) or regression
        ``target_values`` (N × K); every batch gives the same kind."""
        f = as_features(features)
        y = _Targets(target_labels, target_values, whole=False)
        check_same_length(features=f, **{y.name: y})
        if self._ftf is None:
            self._regression, d = y.regression, f.shape[1]
            width = y.width if y.regression else 0  # class columns appear as labels do
            self._ftf, self._fty, self._yy = np.zeros((d, d)), np.zeros((d, width)), np.zeros(width)
            self._s, self._t = 0.0, (np.zeros(width) if y.regression else 1.0)
        elif f.shape[1] != len(self._ftf):
            raise ValueError(f"features: expected {len(self._ftf)} columns as in earlier "
                             f"batches, got {f.shape[1]}")
        if y.regression != self._regression or (y.regression and y.width != len(self._yy)):
            raise ValueError("target_labels, target_values: every batch must give the same kind "
                             "and number of target columns as the first")
        s = max(self._s, float(pow2_scale(f)))
        t = np.maximum(self._t, y.scale) if y.regression else 1.0
        r, q = self._s / s, self._t / t  # rescale the sums so far to the new s and t
        x, width = f / s, max(y.width, len(self._yy))
        self._ftf = self._ftf * r**2 + x.T @ x
        self._fty = grow(self._fty * (r * q), (len(x.T), width))
        self._fty[:, : y.width] += y.project(x) * (y.scale / t)
        self._yy = grow(self._yy * q**2, (width,))
        self._yy[: y.width] += y.sq_norms() * (y.scale / t) ** 2
        self._s, self._t, self._n = s, t, self._n + len(y)
        return self

    def per_target(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(L/n, α, β) at the maximum, one entry per class or regression column."""
        if self._ftf is None:
            raise ValueError("features: no data; call update() first")
        if not self._regression:
            check_class_counts(self._yy.astype(np.int64), "target_labels")
        evidence, alpha, beta = _evidence(self._ftf, self._fty, self._yy, self._n, gram=False)
        ratio = np.float64(self._s) / self._t
        with np.errstate(over="ignore"):  # α, β beyond the float range are reported as inf
            return evidence - np.log(self._t), alpha * ratio**2, beta / np.square(self._t)

    def compute(self) -> float:
        """LogME of all batches so far."""
        return finite(self.per_target()[0].mean(), "features")
