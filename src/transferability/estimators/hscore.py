"""H-score (Bao et al., ICIP 2019) and its shrinkage variant (Ibrahim et al., 2022).

For features f and target labels y:

    H(f) = tr( cov(f)⁺ cov(E[f | y]) ),   cov(E[f | y]) = Σ_c (n_c/n) (μ_c − μ)(μ_c − μ)ᵀ,

with ⁺ the pseudo-inverse (eigenvalues below D·eps·λ_max count as zero). Both covariances
use 1/n, which leaves the ratio unchanged; so does any global scale of f, so features are
divided by a power of two near max|f| first (finite for any finite magnitude). With
``shrinkage=True`` cov(f) becomes the Ledoit–Wolf estimate cov_δ = (1−δ) cov(f) +
δ (tr cov(f)/D) I (Ledoit & Wolf, 2004) and the score is tr(cov_δ⁻¹ (1−δ) cov(E[f | y])), the
regularised H-score of Ibrahim et al. ("Newer is not always better"), more stable when
N ≲ D. Higher = more transferable.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_same_length
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

__all__ = ["h_score", "HScore"]

# the streamed sums and the power of the feature scale each carries (for rescaling them)
_MOMENTS = (("_shift", 1), ("_sum", 1), ("_class_sums", 1), ("_outer", 2), ("_sq", 2),
            ("_sq_x", 3), ("_quart", 4))


class HScore:
    """Streaming H-score from sufficient statistics, O(C·D + D²) memory.

    Keeps n, Σx, Σxxᵀ, per-class sums and counts, and for Ledoit–Wolf Σ‖x‖², Σ‖x‖⁴ and
    Σ‖x‖²x, all of x = f/s minus the first batch's mean (a shift that leaves every
    covariance unchanged and avoids cancellation). s is a power of two near the largest |f|
    so far; when a batch raises it, the sums are rescaled (exactly). :meth:`compute` equals
    :func:`h_score`.
    """

    def __init__(self, shrinkage: bool = False) -> None:
        self.shrinkage = bool(shrinkage)
        self._shift: np.ndarray | None = None
        self._n, self._scale = 0, 0.0

    def update(self, features, target_labels) -> HScore:
        """Add one batch of features (N × D) and target labels (N,)."""
        f = as_features(features)
        labels = batch_labels(target_labels)
        check_same_length(features=f, target_labels=labels)
        if self._shift is None:
            d = f.shape[1]
            self._shift = np.zeros(d)
            self._sum, self._outer, self._sq_x = np.zeros(d), np.zeros((d, d)), np.zeros(d)
            self._sq, self._quart = 0.0, 0.0
            self._class_sums, self._counts = np.zeros((0, d)), np.zeros(0, dtype=np.int64)
        elif f.shape[1] != len(self._shift):
            raise ValueError(f"features: expected {len(self._shift)} columns as in earlier "
                             f"batches, got {f.shape[1]}")
        scale = max(self._scale, float(pow2_scale(f)))
        if scale != self._scale:
            for name, power in _MOMENTS:
                setattr(self, name, getattr(self, name) * (self._scale / scale) ** power)
            self._scale = scale
        x = f / scale
        if self._n == 0:
            self._shift = x.mean(axis=0)
        x -= self._shift
        sq = np.einsum("ij,ij->i", x, x)
        self._n += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x
        self._sq += float(sq.sum())
        self._quart += float(sq @ sq)
        self._sq_x += sq @ x
        num_classes = max(int(labels.max()) + 1, len(self._counts))
        self._class_sums = grow(self._class_sums, (num_classes, len(self._shift)))
        self._class_sums += class_sums(x, labels, num_classes)
        self._counts = grow(self._counts, (num_classes,))
        self._counts += np.bincount(labels, minlength=num_classes)
        return self

    def _ledoit_wolf(self, cov: np.ndarray, mean: np.ndarray) -> tuple[float, float]:
        """Shrinkage δ and target scale μ = tr(cov)/D, from the streamed moments.

        δ = min(b², d²)/d² with d² = ‖cov − μI‖²_F and b² = (1/n²) Σ_k ‖x̃_k x̃_kᵀ − cov‖²_F
        = (Σ_k ‖x̃_k‖⁴/n − ‖cov‖²_F)/n for centred x̃ (Ledoit & Wolf 2004);
        Σ‖x̃‖⁴ is expanded in the raw moments. Matches ``sklearn.covariance.ledoit_wolf``.
        """
        n, d = self._n, len(mean)
        c = float(mean @ mean)
        quart = (self._quart - 4 * mean @ self._sq_x + 2 * c * self._sq
                 + 4 * mean @ self._outer @ mean - 3 * n * c * c)
        frob = float(np.sum(cov * cov))
        mu = float(np.trace(cov)) / d
        d2 = frob - d * mu * mu
        b2 = max(0.0, (quart / n - frob) / n)
        return (min(b2, d2) / d2 if d2 > 0 else 0.0), mu

    def compute(self) -> float:
        """H-score of all batches so far."""
        if self._shift is None:
            raise ValueError("features: no data; call update() first")
        check_class_counts(self._counts)
        n, d = self._n, len(self._shift)
        mean = self._sum / n
        cov = self._outer / n - np.outer(mean, mean)
        diffs = self._class_sums / self._counts[:, None] - mean  # μ_c − μ
        weights = self._counts / n
        factor = 1.0
        if self.shrinkage:
            delta, mu = self._ledoit_wolf(cov, mean)
            cov = (1 - delta) * cov
            cov[np.diag_indices(d)] += delta * mu
            factor = 1 - delta
        lam, vecs = nonzero_eigh(cov)
        proj = diffs @ vecs
        return finite(factor * weights @ (proj**2 / lam).sum(axis=1), "features")


def h_score(features, target_labels, shrinkage: bool = False) -> float:
    """H-score of features (N × D) for target labels (N,); Ledoit–Wolf with ``shrinkage``."""
    f = as_features(features)
    labels, _ = target_classes(target_labels)
    check_same_length(features=f, target_labels=labels)
    return HScore(shrinkage).update(f, labels).compute()


register_estimator("h_score", inputs="features")(h_score)


@register_estimator("h_score_shrinkage", inputs="features")
def h_score_shrinkage(features, target_labels) -> float:
    """H-score with Ledoit–Wolf shrinkage of cov(f)."""
    return h_score(features, target_labels, shrinkage=True)
