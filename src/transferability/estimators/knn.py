"""Leave-one-out k-nearest-neighbour accuracy on the features, cosine metric.

A plain, strong baseline for model selection (critiques of the estimators, e.g. Ibrahim et
al. 2022, find it beats many of them): each sample is classified by the majority label of
its ``k`` most cosine-similar *other* samples (ties go to the class of the nearer
neighbours), and the score is the fraction classified correctly. Similarities are matrix
products of the unit-normalised features, ``block`` rows at a time (O(block·N) memory),
searched in float32 (half the time of float64); the ``k`` + 4 best candidates are then
re-ranked in float64, so the result is exact unless five neighbours tie within float32
rounding. Scale-free; higher = more transferable.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_same_length
from ._common import as_features, target_classes
from .registry import register_estimator

__all__ = ["knn_accuracy"]


@register_estimator("knn", inputs="features")
def knn_accuracy(features, target_labels, k: int | None = None, block: int = 1024) -> float:
    """Leave-one-out accuracy of the ``k``-NN classifier (cosine) on features (N × D);
    ``k`` defaults to 5 (N − 1 on smaller sets)."""
    f = as_features(features)
    labels, num_classes = target_classes(target_labels)
    n = check_same_length(features=f, target_labels=labels)
    k = min(5, n - 1) if k is None else check_int(k, "k", maximum=n - 1)
    block = check_int(block, "block")
    top = np.max(np.abs(f), axis=1, keepdims=True)
    unit = f / np.where(top > 0, top, 1.0)  # rows near 1 first: the norms cannot overflow
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    unit /= np.where(norms > 0, norms, 1.0)  # a zero row stays zero: similarity 0
    # neighbour j of rank r votes 1 + (k - r)/(k + 1)²: the ranks only break ties
    weight = 1.0 + (k - np.arange(k)) / (k + 1) ** 2
    search = unit.astype(np.float32)
    wide = min(k + 4, n - 1)
    correct = 0
    for start in range(0, n, block):
        sim = search[start:start + block] @ search.T
        rows = np.arange(len(sim))
        sim[rows, start + rows] = -np.inf  # leave the sample itself out
        cand = np.argpartition(-sim, wide - 1, axis=1)[:, :wide]
        exact = np.einsum("bd,bkd->bk", unit[start:start + block], unit[cand])
        near = np.take_along_axis(cand, np.argsort(-exact, axis=1, kind="stable")[:, :k], 1)
        votes = np.zeros((len(sim), num_classes))
        np.add.at(votes, (rows[:, None], labels[near]), weight)
        correct += int(np.count_nonzero(votes.argmax(axis=1) == labels[start:start + block]))
    return correct / n
