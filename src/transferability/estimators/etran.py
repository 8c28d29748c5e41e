"""ETran, energy-based transferability (Gholami et al., ICCV 2023), for classification.

ETran adds two terms computed on the target features f:

- the energy score S_en: the energy of a sample is −log Σ_d exp f_d (the features read as
  logits, Eq. 3); S_en is the mean of log Σ_d exp f_d over the ``fraction`` of samples
  where it is lowest (the authors' code: 0.5%, at least one sample here);
- the classification score S_lda: the mean probability of the true class under the
  authors' LDA classifier. Their code keeps every eigenvector of a symmetric eigenproblem,
  whose projection V satisfies VVᵀ = I, so the classifier is exactly the nearest class mean:
  logits f·μ_c − ½‖μ_c‖² + log π_c; we compute that directly.

The paper's SVD (regression) term is for detection targets and is not part of the
classification score. The authors' code min–max normalises each term over the candidate
models before mixing them 0.15 : 0.85; a score of one model cannot do that, so ``etran``
returns S_en + S_lda and :func:`etran_terms` returns both terms for such a mix. ETran
depends on the feature scale (as does the energy). Higher = more transferable.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from .._validation import check_fraction, check_same_length
from ._common import as_features, class_means, finite, target_classes
from .registry import register_estimator

__all__ = ["etran", "etran_terms"]


def etran_terms(features, target_labels, fraction: float = 0.005) -> tuple[float, float]:
    """ETran's (energy, LDA) terms of features (N × D) for target labels (N,)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    fraction = check_fraction(fraction, "fraction")
    energy = logsumexp(f, axis=1)
    lowest = np.partition(energy, max(1, int(fraction * n)) - 1)[:max(1, int(fraction * n))]
    means, counts = class_means(f, labels, num_classes)
    logits = f @ means.T - 0.5 * np.einsum("cd,cd->c", means, means) + np.log(counts / n)
    probs = softmax(logits, axis=1)
    return (finite(lowest.mean(), "features"),
            finite(probs[np.arange(n), labels].mean(), "features"))


@register_estimator("etran", inputs="features")
def etran(features, target_labels, fraction: float = 0.005) -> float:
    """ETran = S_en + S_lda of features (N × D) for target labels (N,)."""
    return sum(etran_terms(features, target_labels, fraction))
