"""NCTI, the neural-collapse transferability index (Wang et al., CVPR 2023, Eqs. 4–9).

How far the target features are from neural collapse, in three terms, each computed on
the features reduced to ``components`` principal components (64 in the authors' code):

- **S_seli** (simplex-ETF geometry, Eq. 5–6): the nuclear norm ‖Z̄‖_* of the centred
  projection of the features on the first C − 1 discriminant directions of a regularised
  Fisher LDA (the generalised eigenvectors V of (S_b(λ), S_w(λ)), so Vᵀ S_w(λ) V = I);
  a larger nuclear norm means class means spread over more directions;
- **S_ncc** (nearest-centre classifier, Eq. 8): the mean true-class probability of that
  LDA, logits x S_w(λ)⁻¹ μ_c − ½ μ_c S_w(λ)⁻¹ μ_c + log π_c;
- **S_vc** (within-class variability collapse, Eq. 4): log Σ_c ‖P_c‖_*, with P_c the
  N_c × C matrix of those probabilities for the samples of class c (a collapsed class has
  rank-one predictions, hence a small nuclear norm).

λ = max(exp(−Σ_{j<32} σ_j²), 1e-10) from the 32 largest principal variances (N − 1
denominator), and S_w(λ) = (1 − λ) S_w + λ (tr S_w / k) I, S_b(λ) = S_t(λ) − S_w(λ), as
the authors' scikit-learn LDA computes them. The authors min–max normalise each term over
the candidate models and score S_seli + S_ncc − S_vc; a score of one model cannot, so
``ncti`` returns the unnormalised S_seli + S_ncc − S_vc, :func:`ncti_terms` the three
terms and :func:`ncti_across` the authors' normalised combination over a set of models.
The features are divided by a power of two near their largest magnitude first (the terms
are unchanged by it; λ is taken in the input's units), so any finite scale gives a number.
Higher = more transferable.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.special import softmax

from .._validation import as_float64, check_int, check_same_length
from ._common import (
    as_features,
    check_class_sizes,
    class_means,
    finite,
    pow2_scale,
    principal_components,
    target_classes,
)
from .registry import register_estimator

__all__ = ["ncti", "ncti_terms", "ncti_across"]


def _shrunk(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    out = (1 - shrinkage) * cov
    out[np.diag_indices(len(cov))] += shrinkage * np.trace(cov) / len(cov)
    return out


def ncti_terms(features, target_labels,
               components: int | None = None) -> tuple[float, float, float]:
    """NCTI's (S_seli, S_ncc, S_vc) of features (N × D) for target labels (N,), on
    ``components`` principal components (default: 64, or N − C or the features' rank when
    fewer: beyond N − C the within-class scatter is singular)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    check_class_sizes(np.bincount(labels, minlength=num_classes), 2)
    z = (principal_components(f, min(64, n - num_classes), variance=1.0) if components is None
         else principal_components(f, check_int(components, "components"), name="components"))
    scale = float(pow2_scale(z))
    z = z / scale
    top = np.sum(z[:, :32] ** 2) / (n - 1)  # Σ of the 32 largest variances, in z's units
    log_top = np.log(top) + 2 * np.log(scale) if top > 0 else -np.inf
    shrinkage = max(float(np.exp(-np.exp(min(log_top, 700.0)))), 1e-10)
    means, counts = class_means(z, labels, num_classes)
    resid = z - means[labels]
    within = _shrunk(resid.T @ resid / n, shrinkage)
    between = _shrunk(z.T @ z / n, shrinkage) - within  # z is centred: S_t = zᵀz / N
    try:
        evals, vecs = linalg.eigh(between, within)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ValueError("features: the within-class scatter is singular (constant "
                         "features?)") from exc
    vecs = vecs[:, np.argsort(evals)[::-1]]
    coef = (means @ vecs) @ vecs.T  # μ_c S_w(λ)⁻¹
    logits = z @ coef.T - 0.5 * np.einsum("cd,cd->c", means, coef) + np.log(counts / n)
    probs = softmax(logits, axis=1)
    low = z @ vecs[:, :min(num_classes - 1, z.shape[1])]
    seli = linalg.svdvals(low - low.mean(axis=0)).sum()
    ncc = probs[np.arange(n), labels].mean()
    order = np.argsort(labels, kind="stable")
    groups = np.split(probs[order], np.cumsum(counts)[:-1])
    vc = np.log(sum(linalg.svdvals(g).sum() for g in groups))  # C small SVDs, N·C² in all
    return finite(seli, "features"), finite(ncc, "features"), finite(vc, "features")


@register_estimator("ncti", inputs="features", min_per_class=2)
def ncti(features, target_labels, components: int | None = None) -> float:
    """NCTI of one model, unnormalised: S_seli + S_ncc − S_vc (see :func:`ncti_across`)."""
    seli, ncc, vc = ncti_terms(features, target_labels, components)
    return seli + ncc - vc


def ncti_across(terms) -> np.ndarray:
    """The authors' NCTI of M models from their (S_seli, S_ncc, S_vc) rows (M × 3): each
    term min–max normalised over the models, then S_seli + S_ncc − S_vc (Eq. 9)."""
    t = as_float64(terms, "terms", ndim=2)
    if t.shape[1] != 3 or len(t) < 2:
        raise ValueError(f"terms: expected M × 3 rows (S_seli, S_ncc, S_vc) of M >= 2 models, "
                         f"got shape {t.shape}")
    span = t.max(axis=0) - t.min(axis=0)
    norm = (t - t.min(axis=0)) / np.where(span > 0, span, 1.0)
    return norm[:, 0] + norm[:, 1] - norm[:, 2]
