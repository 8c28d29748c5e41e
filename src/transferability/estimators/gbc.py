"""GBC, the Gaussian Bhattacharyya coefficient (Pándy et al., CVPR 2022, Eqs. 2–4).

The features are reduced to ``dims`` principal components (64 in the paper); each class c
is a Gaussian N(μ_c, Σ_c) with diagonal Σ_c (``gaussian="diagonal"``) or spherical
σ_c² I, σ_c² the mean of the diagonal (``"spherical"``, the authors' default). With
Σ = (Σ_i + Σ_j)/2 the Bhattacharyya distance is

    D_B(i, j) = ⅛ (μ_i − μ_j)ᵀ Σ⁻¹ (μ_i − μ_j) + ½ log( det Σ / √(det Σ_i det Σ_j) ),

and GBC = −Σ_{i ≠ j} exp(−D_B(i, j)) (≤ 0; higher = better-separated classes = more
transferable). All C² pairs are one broadcast over C × C (× k) arrays. Variances are the
biased per-class estimates, floored at 1e-8 × their mean over classes and axes; the
authors' code floors at an absolute 1e-4, which makes GBC depend on the feature scale.
Ours is scale-free.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_int, check_same_length
from ._common import (
    as_features,
    check_class_sizes,
    class_means,
    finite,
    principal_components,
    target_classes,
)
from .registry import register_estimator

__all__ = ["gbc"]


@register_estimator("gbc", inputs="features", min_per_class=2)
def gbc(features, target_labels, dims: int | None = None,
        gaussian: str = "spherical") -> float:
    """GBC of features (N × D) for target labels (N,) on ``dims`` principal components
    (default: 64, or the features' rank when lower)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    check_same_length(features=f, target_labels=labels)
    gaussian = check_choice(gaussian, "gaussian", ("spherical", "diagonal"))
    z = (principal_components(f, 64, variance=1.0) if dims is None
         else principal_components(f, check_int(dims, "dims")))
    z /= np.sqrt(np.mean(z * z))  # unit scale: the variance floor is relative
    means, counts = class_means(z, labels, num_classes)
    check_class_sizes(counts, 2)
    var = class_means(z * z, labels, num_classes)[0] - means**2
    var = np.maximum(var, 1e-8 * var.mean())
    if gaussian == "spherical":
        var = np.repeat(var.mean(axis=1, keepdims=True), z.shape[1], axis=1)
    log_var = np.log(var)
    avg = (var[:, None] + var[None]) / 2  # C × C × k
    dist = (((means[:, None] - means[None]) ** 2 / avg).sum(axis=2) / 8
            + 0.5 * (np.log(avg).sum(axis=2)
                     - 0.5 * (log_var.sum(axis=1)[:, None] + log_var.sum(axis=1)[None])))
    coef = np.exp(-dist)
    np.fill_diagonal(coef, 0.0)
    return finite(-coef.sum(), "features")
