"""N-LEEP, Gaussian-mixture LEEP (Li et al., CVPR 2021, "Ranking neural checkpoints").

LEEP (:mod:`.leep`) with the source classifier replaced by a Gaussian mixture fitted on the
target features: the features are reduced to the principal components keeping ``variance``
of their variance (80% in the paper), a full-covariance mixture of
``components_per_class`` × C components (5 × C in the paper) is fitted by EM, and its
posteriors p(z | x) take the place of the source softmax θ(x) in LEEP's formula.

Bounded cost: EM costs O(N·K·k²) per iteration for K components in the k kept
dimensions; on features of high intrinsic dimension (isotropic ones need most of their
dimensions for 80% of the variance) that made the authors' code run for minutes. We keep
at most ``max_dims`` (32) dimensions, and at most N / (2(k + 1)) components, so that each
full covariance (k(k + 3)/2 parameters) is fitted on at least 2(k + 1) samples on average
(the paper's 5 × C exceeds that on large C: 500 components for 10,000 samples). The
mixture is fitted by scikit-learn's ``GaussianMixture`` with k-means initialisation and
a ``seed`` (the authors' is unseeded), on the scores divided by their overall standard
deviation so that its covariance regulariser is relative (scale-free). The score keeps
LEEP's log, as the paper does; the authors' code averages the expected empirical
prediction without it.
Higher = more transferable.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from .._validation import check_int, check_same_length, check_seed, check_unit_interval
from ._common import as_features, principal_components, target_classes
from .leep import leep
from .registry import register_estimator

__all__ = ["nleep", "mixture_posteriors"]


def mixture_posteriors(features, num_components: int, *, variance: float = 0.8,
                       max_dims: int = 32, seed: int = 0) -> np.ndarray:
    """Posteriors p(z | x) (N × K) of a full-covariance Gaussian mixture on the k principal
    components of ``features`` keeping ``variance`` of it (k ≤ ``max_dims``), with
    K = min(``num_components``, N / (2(k + 1))) components."""
    f = as_features(features)
    variance = check_unit_interval(variance, "variance")
    z = principal_components(f, check_int(max_dims, "max_dims"), variance=variance)
    z /= np.sqrt(np.mean(z * z))
    components = max(1, min(check_int(num_components, "num_components"),
                            len(z) // (2 * (z.shape[1] + 1))))
    gmm = GaussianMixture(components, covariance_type="full", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gmm.fit(z).predict_proba(z)


@register_estimator("nleep", inputs="features", min_per_class=2)
def nleep(features, target_labels, components_per_class: int = 5, variance: float = 0.8,
          max_dims: int = 32, seed: int = 0) -> float:
    """N-LEEP of features (N × D) for target labels (N,), in nats per sample (≤ 0)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    per_class = check_int(components_per_class, "components_per_class")
    if n < 2 * num_classes:
        raise ValueError(f"target_labels: {n} samples for {num_classes} classes; N-LEEP "
                         "needs at least two samples per class for its mixture")
    probs = mixture_posteriors(f, per_class * num_classes, variance=variance, max_dims=max_dims,
                               seed=check_seed(seed))
    return leep(probs, labels)
