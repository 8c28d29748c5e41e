"""PARC, Pairwise Annotation Representation Comparison (Bolya et al., NeurIPS 2021, Eq. 2).

The features are reduced to ``dims`` principal components (32 in the paper) and
standardised; their representation dissimilarity matrix is 1 − the Pearson correlation
between every two samples, that of the labels 1 − the correlation between their one-hot
vectors. PARC is the Spearman correlation of the two matrices' upper triangles.

The label matrix takes two values only: 0 for a pair of the same class and 1 + 1/(C − 1)
otherwise. So Spearman's ρ is the point-biserial correlation of the feature dissimilarities'
ranks with "different class", which needs only the Mann–Whitney count U of (same, different)
pairs with the different-class pair less dissimilar (ties count ½):

    ρ = (R̄_diff − R̄_same) · √(p(1 − p)) / σ_R,   σ_R² = (M² − 1)/12,

for M pairs, p the share of different-class pairs and R̄ the mean ranks (from U). U comes
from sorting the same-class dissimilarities (≈ N²/2C) and counting, block by block, where
the different-class ones of each block of rows (sorted) fall below them: no N × N matrix
in memory. ``σ_R``
assumes no tied feature dissimilarities (ties need duplicate samples). The authors' code
returns 100·ρ and reduces with a randomised PCA (one power iteration); ours returns ρ
from an exact PCA. (Their ``np.corrcoef`` of one-hot rows also leaves rounding noise,
0 or 1.1e-16, in the label matrix, which Spearman ranks as distinct values; we use its
two exact values.) Scale-free; higher = more transferable.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_same_length
from ._common import as_features, finite, principal_components, target_classes
from .registry import register_estimator

__all__ = ["parc"]


def _different_class(z: np.ndarray, labels: np.ndarray, block: int):
    """The dissimilarities of the different-class pairs i < j, ``block`` rows i at a time."""
    n = len(z)
    for start in range(0, n - 1, block):
        stop = min(start + block, n - 1)
        dis = 1.0 - z[start:stop] @ z[start + 1:].T  # row i against columns j > start
        keep = labels[start:stop, None] != labels[None, start + 1:]
        rows = stop - start
        keep[:, :rows] &= np.triu(np.ones((rows, rows), dtype=bool))  # only j > i
        yield dis[keep]


@register_estimator("parc", inputs="features")
def parc(features, target_labels, dims: int | None = None, block: int = 1024) -> float:
    """PARC of features (N × D) for target labels (N,), on ``dims`` principal components
    (default: 32, or the features' rank when lower)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    block = check_int(block, "block")
    z = (principal_components(f, 32, variance=1.0) if dims is None
         else principal_components(f, check_int(dims, "dims")))
    z = z / z.std(axis=0)  # standardise (PCA scores are centred)
    z -= z.mean(axis=1, keepdims=True)  # each sample's correlation with every other
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    z /= np.where(norms > 0, norms, 1.0)

    same_values = np.sort(np.concatenate([  # class by class: Σ n_c² entries, not N²
        (1.0 - zc @ zc.T)[np.triu_indices(len(zc), 1)]
        for zc in (z[labels == c] for c in range(num_classes))]))
    m1 = len(same_values)
    m = n * (n - 1) // 2
    if m1 in (0, m):
        raise ValueError("target_labels: every pair of samples is of the same class, or none "
                         "is; PARC needs both")
    u = 0.0  # Σ over same-class pairs of #(different-class pairs less dissimilar), ties ½
    for diff in _different_class(z, labels, block):
        diff.sort()  # sorted keys and queries: each search starts where the last ended
        u += 0.5 * float(np.searchsorted(diff, same_values, "left").sum()
                         + np.searchsorted(diff, same_values, "right").sum())
    m0 = m - m1
    rank_same = (m1 + 1) / 2 + u / m1  # mean rank of the same-class pairs
    rank_diff = (m * (m + 1) / 2 - m1 * rank_same) / m0
    rho = (rank_diff - rank_same) * np.sqrt(m0 * m1 / m**2) / np.sqrt((m * m - 1) / 12)
    return finite(rho, "features")
