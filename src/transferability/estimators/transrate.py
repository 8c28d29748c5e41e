"""TransRate, the coding-rate estimate of I(Z; Y) (Huang et al., ICML 2022).

On features Z (n × d) centred by their overall mean, with the coding rate at distortion ε

    R(Z, ε) = ½ log det(I_d + d/(n·eps) ZᵀZ),     eps = ε² (1e-4 as in the authors' code),

TransRate = R(Z, ε) − R(Z | Y, ε),  R(Z | Y, ε) = Σ_c (n_c/n) R(Z_c, ε),

where Z_c are the rows of class c (not re-centred). Higher = more transferable. This follows
the paper's d/(nε²) scaling and n_c/n class weights; the released code drops the factor d
and averages the classes unweighted, so its numbers differ (rankings rarely do).
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float64, check_positive, check_same_length
from ._common import target_classes
from .registry import register_estimator

__all__ = ["transrate"]


def coding_rate(z: np.ndarray, eps: float, d: int) -> float:
    """R(Z, ε) = ½ log det(I + d/(n·eps) ZᵀZ), on the smaller side of Z (det(I+AB) = det(I+BA))."""
    n = len(z)
    gram = z @ z.T if n < z.shape[1] else z.T @ z
    a = gram * (d / (n * eps))
    a[np.diag_indices_from(a)] += 1.0
    return 0.5 * float(np.linalg.slogdet(a)[1])


@register_estimator("transrate", kind="features")
def transrate(features, target_labels, eps: float = 1e-4) -> float:
    """TransRate of features (N × D) for target labels (N,), in nats."""
    z = as_float64(features, "features", ndim=2)
    labels, num_classes = target_classes(target_labels)
    check_same_length(features=z, target_labels=labels)
    eps = check_positive(eps, "eps")
    z = z - z.mean(axis=0)
    n, d = z.shape
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=num_classes))[:-1]
    conditional = sum(len(zc) / n * coding_rate(zc, eps, d)
                      for zc in np.split(z[order], bounds))
    return coding_rate(z, eps, d) - conditional
