"""SFDA, self-challenging Fisher discriminant analysis (Shao et al., ECCV 2022, Eqs. 3–7).

1. Regularised Fisher discriminant: with the within-class scatter S_w = Σ_c π_c cov_c and
   λ = max(exp(−5 σ_max(S_w)), 1e-10) (Eq. 5), S_w(λ) = (1 − λ) S_w + λ (tr S_w / D) I.
   The authors' code projects on every one of the D generalised eigenvectors V of
   (S_b, S_w(λ)), so V Vᵀ = S_w(λ)⁻¹ and the classifier is LDA with S_w(λ):
   logits x S_w(λ)⁻¹ μ_c − ½ μ_c S_w(λ)⁻¹ μ_c + log π_c. We solve that with a Cholesky
   factor instead of the generalised eigenproblem (same numbers, far fewer operations).
2. Self-challenging ConfMix (Eq. 6): q = softmax of the first pass's probabilities; every
   sample moves towards the mean μ̄_c of the other classes' means,
   x ← q_y x + (1 − q_y) μ̄_y.
3. The score (Eq. 7) is the mean probability of the true class under step 1's classifier
   refitted on the mixed features, with the same λ.

σ_max is the exact largest eigenvalue (Lanczos); the authors take three power iterations,
which only matters when exp(−5σ) lies above 1e-10. The features are divided by a power of
two near their largest magnitude first: the classifier is unchanged by it and λ is
computed from log σ, so any finite magnitude gives a number. Higher = more transferable.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse.linalg import eigsh
from scipy.special import softmax

from .._validation import check_same_length
from ._common import as_features, class_means, finite, pow2_scale, target_classes
from .registry import register_estimator

__all__ = ["sfda"]


def _largest_eigenvalue(sym: np.ndarray) -> float:
    """σ_max of a PSD matrix (Lanczos from a fixed start vector, deterministic)."""
    if len(sym) <= 64:
        return float(np.linalg.eigvalsh(sym)[-1])
    return float(eigsh(sym, k=1, which="LA", v0=np.ones(len(sym)), tol=1e-10)[0][0])


def _lda_probs(z: np.ndarray, labels: np.ndarray, num_classes: int, log_scale2: float,
               shrinkage: float | None) -> tuple[np.ndarray, float]:
    """Class probabilities of the regularised LDA fitted on (z, labels), and its λ."""
    n, d = z.shape
    means, counts = class_means(z, labels, num_classes)
    resid = z - means[labels]
    within = resid.T @ resid / n  # S_w = Σ_c π_c cov_c
    if shrinkage is None:
        sigma = _largest_eigenvalue(within)
        log_sigma = np.log(sigma) + log_scale2 if sigma > 0 else -np.inf  # in f's units
        shrinkage = max(float(np.exp(-5 * np.exp(min(log_sigma, 700.0)))), 1e-10)
    shrunk = (1 - shrinkage) * within
    shrunk[np.diag_indices(d)] += shrinkage * np.trace(within) / d
    try:
        coef = cho_solve(cho_factor(shrunk), means.T)  # D × C: S_w(λ)⁻¹ μ_cᵀ
    except np.linalg.LinAlgError as exc:
        raise ValueError("features: the within-class scatter is singular (constant "
                         "features?)") from exc
    logits = z @ coef - 0.5 * np.einsum("cd,dc->c", means, coef) + np.log(counts / n)
    return softmax(logits, axis=1), shrinkage


@register_estimator("sfda", inputs="features")
def sfda(features, target_labels) -> float:
    """SFDA of features (N × D) for target labels (N,): a mean probability, in (0, 1)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    scale = float(pow2_scale(f))
    z = f / scale
    log_scale2 = 2 * np.log(scale)
    probs, shrinkage = _lda_probs(z, labels, num_classes, log_scale2, None)
    rows = np.arange(n)
    confidence = softmax(probs, axis=1)[rows, labels][:, None]
    means = class_means(z, labels, num_classes)[0]
    others = (means.sum(axis=0) - means) / (num_classes - 1)  # mean of the other classes
    mixed = confidence * z + (1 - confidence) * others[labels]
    probs = _lda_probs(mixed, labels, num_classes, log_scale2, shrinkage)[0]
    return finite(probs[rows, labels].mean(), "features")
