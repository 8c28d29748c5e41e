"""TransRate, the coding-rate estimate of I(Z; Y) (Huang et al., ICML 2022).

On features Z (n × d) centred by their overall mean, with the coding rate at distortion ε

    R(Z, ε) = ½ log det(I_d + d/(n·ε²) ZᵀZ)      (``distortion`` = ε², 1e-4 as in the
                                                   authors' code),

TransRate = R(Z, ε) − R(Z | Y, ε),  R(Z | Y, ε) = Σ_c (n_c/n) R(Z_c, ε),

where Z_c are the rows of class c (not re-centred). Higher = more transferable. This follows
the paper's d/(nε²) scaling and n_c/n class weights; the released code drops the factor d
and averages the classes unweighted, so its numbers differ (rankings rarely do).

TransRate depends on the scale of Z, so it is computed for Z = s·Z̃ with s a power of two and
max|Z̃| in [1, 2): R = ½ Σ_λ log(1 + k s² λ) over the eigenvalues λ of Z̃'s Gram matrix, each
term as logaddexp(0, log k + 2 log s + log λ), finite for every finite input.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_positive, check_same_length
from ._common import as_features, finite, nonzero_eigh, pow2_scale, target_classes
from .registry import register_estimator

__all__ = ["transrate"]


def coding_rate(z: np.ndarray, log_k: float) -> float:
    """½ log det(I + e^log_k ZᵀZ) from the nonzero eigenvalues of the smaller Gram of Z."""
    gram = z @ z.T if len(z) < z.shape[1] else z.T @ z
    lam = nonzero_eigh(gram, vectors=False)[0]
    return 0.5 * float(np.logaddexp(0.0, log_k + np.log(lam)).sum())


@register_estimator("transrate", inputs="features")
def transrate(features, target_labels, distortion: float = 1e-4) -> float:
    """TransRate of features (N × D) for target labels (N,) at ``distortion`` ε², in nats."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    check_same_length(features=f, target_labels=labels)
    distortion = check_positive(distortion, "distortion")
    scale = pow2_scale(f)
    z = f / scale
    z -= z.mean(axis=0)  # centre after scaling: the mean of huge features cannot overflow
    rescale = pow2_scale(z)
    z /= rescale
    n, d = z.shape
    log_k = np.log(d / distortion) + 2 * (np.log(scale) + np.log(rescale))  # log(d s²/ε²)
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=num_classes))[:-1]
    conditional = sum(len(zc) / n * coding_rate(zc, log_k - np.log(len(zc)))
                      for zc in np.split(z[order], bounds))
    return finite(coding_rate(z, log_k - np.log(n)) - conditional, "features")
