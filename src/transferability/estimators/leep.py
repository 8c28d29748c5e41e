"""LEEP, the log expected empirical prediction (Nguyen et al., ICML 2020, Sec. 3).

With θ(x) the source model's softmax over source classes z, and n target samples (xᵢ, yᵢ):

    P̂(y, z) = (1/n) Σ_{i: yᵢ = y} θ(xᵢ)_z,     P̂(y | z) = P̂(y, z) / Σ_y′ P̂(y′, z),
    LEEP = (1/n) Σᵢ log Σ_z P̂(yᵢ | z) θ(xᵢ)_z          (≤ 0; higher = more transferable).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._validation import check_probabilities, check_same_length
from ._common import (
    as_features,
    batch_labels,
    check_class_counts,
    finite,
    grow,
    one_hot,
    target_classes,
)
from .registry import register_estimator

__all__ = ["leep", "LEEP"]


def _probs(source_probs) -> tuple[np.ndarray, np.ndarray]:
    """Checked softmax rows and 1/row sum: rows are used as θ/Σθ, exact to the last bit."""
    p = check_probabilities(as_features(source_probs, "source_probs"), "source_probs")
    return p, 1.0 / p.sum(axis=1)


def _joint(p: np.ndarray, inv: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """C × Z table of sums n·P̂(y, z) = Σ_{i: yᵢ = y} θ(xᵢ)_z."""
    return np.asarray(one_hot(labels, num_classes, inv) @ p)


def _conditional(joint: np.ndarray) -> np.ndarray:
    """P̂(y | z) from the table n·P̂(y, z); columns never hit stay 0."""
    col = joint.sum(axis=0, keepdims=True)
    return np.divide(joint, col, out=np.zeros_like(joint), where=col > 0)


def _log_eep(p: np.ndarray, inv: np.ndarray, labels: np.ndarray,
             cond: np.ndarray) -> np.ndarray:
    """log Σ_z P̂(yᵢ | z) θ(xᵢ)_z for every sample (the expected empirical prediction)."""
    eep = np.empty(len(labels))
    for c in np.unique(labels):  # one matrix-vector product per class: O(N·Z) in all
        rows = labels == c
        eep[rows] = p[rows] @ cond[c]
    return np.log(eep * inv)


@register_estimator("leep", inputs="probs")
def leep(source_probs, target_labels) -> float:
    """LEEP of source softmax outputs (N × Z) for target labels (N,), in nats per sample."""
    p, inv = _probs(source_probs)
    labels, num_classes = target_classes(target_labels)
    check_same_length(source_probs=p, target_labels=labels)
    cond = _conditional(_joint(p, inv, labels, num_classes))
    return finite(_log_eep(p, inv, labels, cond).mean(), "source_probs")


def _pairs(batches: Iterable[tuple]) -> Iterable[tuple]:
    """The items of ``batches``, each checked to be a ``(source_probs, target_labels)`` pair."""
    if not isinstance(batches, Iterable):
        raise ValueError("batches: expected an iterable of (source_probs, target_labels) "
                         f"pairs, got {type(batches).__name__}")
    for item in batches:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError("batches: every item must be a (source_probs, target_labels) "
                             f"pair, got {type(item).__name__}")
        yield item


class LEEP:
    """Streaming LEEP in two passes over the same batches, in any order.

    LEEP has no fixed-size summary: P̂(y | z) needs all the data, and each sample's term
    needs its own θ(xᵢ). Pass 1, :meth:`update`, accumulates the class-by-class sums
    n·P̂(y, z) (C × Z). Pass 2, :meth:`compute`, reads the batches again, sums the log EEP
    terms and checks the batches reproduce the pass-1 table. Memory is O(C·Z).
    """

    def __init__(self) -> None:
        self._joint = np.zeros((0, 0))
        self._counts = np.zeros(0, dtype=np.int64)

    def _batch(self, source_probs, target_labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (p, inv), labels = _probs(source_probs), batch_labels(target_labels)
        check_same_length(source_probs=p, target_labels=labels)
        if self._joint.size and p.shape[1] != self._joint.shape[1]:
            raise ValueError(f"source_probs: expected {self._joint.shape[1]} source classes "
                             f"as in earlier batches, got {p.shape[1]}")
        return p, inv, labels

    def update(self, source_probs, target_labels) -> LEEP:
        """Pass 1: add one batch of source softmax outputs and target labels."""
        p, inv, labels = self._batch(source_probs, target_labels)
        num_classes = max(int(labels.max()) + 1, len(self._counts))
        self._joint = grow(self._joint, (num_classes, p.shape[1]))
        self._joint += _joint(p, inv, labels, num_classes)
        self._counts = grow(self._counts, (num_classes,))
        self._counts += np.bincount(labels, minlength=num_classes)
        return self

    def compute(self, batches: Iterable[tuple]) -> float:
        """Pass 2: LEEP, re-reading ``batches`` of ``(source_probs, target_labels)``."""
        num_classes = check_class_counts(self._counts)
        cond = _conditional(self._joint)
        total, n, joint = 0.0, 0, np.zeros_like(self._joint)
        for source_probs, target_labels in _pairs(batches):
            p, inv, labels = self._batch(source_probs, target_labels)
            if labels.max() >= num_classes:
                raise ValueError(f"batches: label {int(labels.max())} was not seen in update()")
            total += float(_log_eep(p, inv, labels, cond).sum())
            joint += _joint(p, inv, labels, num_classes)
            n += len(labels)
        scale = max(1.0, float(np.abs(self._joint).max()))
        if n != self._counts.sum() or not np.allclose(joint, self._joint, rtol=0,
                                                      atol=1e-9 * scale):
            raise ValueError("batches: differ from the data given to update(); pass the same "
                             "batches again (order does not matter)")
        return finite(total / n, "source_probs")
