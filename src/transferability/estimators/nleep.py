"""N-LEEP, Gaussian-mixture LEEP (Li et al., CVPR 2021, "Ranking neural checkpoints").

LEEP (:mod:`.leep`) with the source classifier replaced by a Gaussian mixture fitted on the
target features: the features are reduced to the principal components keeping ``variance``
of their variance (80% in the paper), a full-covariance mixture of
``components_per_class`` × C components (5 × C in the paper) is fitted by EM, and its
posteriors p(z | x) take the place of the source softmax θ(x) in LEEP's formula.

Bounded cost: on features of high intrinsic dimension (isotropic ones need most of their
dimensions for 80% of the variance) EM costs O(N·K·k²) per iteration in the k kept
dimensions, which is what made the authors' code run for minutes; we keep at most
``max_dims`` (32) components, and at most N/2 mixture components. The mixture is fitted
by scikit-learn's ``GaussianMixture`` with k-means initialisation and a ``seed`` (the
authors' is unseeded), on the scores divided by their overall standard deviation so that
its covariance regulariser is relative (scale-free). The score keeps LEEP's log, as the
paper does; the authors' code averages the expected empirical prediction without it.
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
    """Posteriors p(z | x) (N × K) of a full-covariance Gaussian mixture on the principal
    components of ``features`` keeping ``variance`` of it (at most ``max_dims`` of them)."""
    f = as_features(features)
    variance = check_unit_interval(variance, "variance")
    z = principal_components(f, check_int(max_dims, "max_dims"), variance=variance)
    z /= np.sqrt(np.mean(z * z))
    gmm = GaussianMixture(num_components, covariance_type="full", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gmm.fit(z).predict_proba(z)


@register_estimator("nleep", kind="features")
def nleep(features, target_labels, components_per_class: int = 5, variance: float = 0.8,
          max_dims: int = 32, seed: int = 0) -> float:
    """N-LEEP of features (N × D) for target labels (N,), in nats per sample (≤ 0)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    per_class = check_int(components_per_class, "components_per_class")
    components = min(per_class * num_classes, n // 2)
    if components < num_classes:
        raise ValueError(f"target_labels: {n} samples for {num_classes} classes; N-LEEP "
                         "needs at least two samples per class for its mixture")
    probs = mixture_posteriors(f, components, variance=variance, max_dims=max_dims,
                               seed=check_seed(seed))
    return leep(probs, labels)
