"""Small helpers the estimators share: label checks, per-class sums, growing count tables."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .._validation import as_labels, check_more_samples_than_classes


def target_classes(target_labels, name: str = "target_labels") -> tuple[np.ndarray, int]:
    """Check labels for a whole task (0..C-1, all present, C >= 2, n > C); return (labels, C)."""
    labels = as_labels(target_labels, name)
    num_classes = int(labels.max()) + 1
    check_more_samples_than_classes(len(labels), num_classes, name)
    return labels, num_classes


def batch_labels(target_labels, name: str = "target_labels") -> np.ndarray:
    """Check the labels of one streaming batch: integers >= 0, any subset of classes."""
    return as_labels(target_labels, name, contiguous=False, min_classes=1)


def check_class_counts(counts: np.ndarray, name: str = "target_labels") -> int:
    """At ``compute()``: the classes seen over all batches must form a task; return C."""
    if counts.size == 0:
        raise ValueError(f"{name}: no data; call update() first")
    as_labels(np.flatnonzero(counts), name)  # every class 0..C-1 present, at least two
    check_more_samples_than_classes(int(counts.sum()), counts.size, name)
    return counts.size


def one_hot(labels: np.ndarray, num_classes: int,
            weights: np.ndarray | None = None) -> sparse.csr_array:
    """Sparse C × N indicator matrix of ``labels`` (entries ``weights`` instead of 1 if given)."""
    n = len(labels)
    data = np.ones(n) if weights is None else weights
    return sparse.csr_array((data, (labels, np.arange(n))), shape=(num_classes, n))


def class_sums(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Row sums of ``values`` (N × K) within each class: a C × K array, in O(N·K)."""
    return np.asarray(one_hot(labels, num_classes) @ values)


def grow(table: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``table`` zero-padded to at least ``shape`` (streaming tables widen as classes appear)."""
    target = tuple(max(a, b) for a, b in zip(table.shape, shape, strict=True))
    if target == table.shape:
        return table
    out = np.zeros(target, dtype=table.dtype)
    out[tuple(slice(0, s) for s in table.shape)] = table
    return out
