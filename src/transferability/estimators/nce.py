"""NCE, negative conditional entropy, and task hardness (Tran et al., ICCV 2019).

With zᵢ the source model's predicted class and yᵢ the target label, P̂(y, z) = counts / n:

    NCE = −H(Y | Z) = Σ_{y,z} P̂(y, z) log P̂(y | z)    (0·log 0 = 0; ≤ 0, in nats).

Tran et al. show that H(Y | Z) bounds how much log-likelihood is lost by transferring a model
of Z to Y, so higher NCE is more transferable.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_labels, check_same_length
from ._common import batch_labels, check_class_counts, grow, target_classes
from .registry import register_estimator

__all__ = ["nce", "NCE", "task_hardness"]


def _source(source_labels) -> np.ndarray:
    """Source predictions: integers >= 0; source classes never predicted are fine."""
    return as_labels(source_labels, "source_labels", contiguous=False, min_classes=1)


def _predicted(source_labels) -> tuple[np.ndarray, int]:
    """Source predictions renumbered 0..Z′-1 in order over the Z′ classes predicted (columns
    never hit add nothing to H(Y | Z), so the table need not span unused labels)."""
    z = np.unique(_source(source_labels), return_inverse=True)[1]
    return z, int(z.max()) + 1


def _joint_counts(z: np.ndarray, y: np.ndarray, num_z: int, num_y: int) -> np.ndarray:
    """C × Z table of counts n·P̂(y, z)."""
    return np.bincount(y * num_z + z, minlength=num_y * num_z).reshape(num_y, num_z)


def _conditional_entropy(joint: np.ndarray) -> float:
    """H(Y | Z) = −Σ P̂(y, z) log P̂(y | z) from a table of counts (rows y, columns z)."""
    joint = joint.astype(np.float64)
    col = np.broadcast_to(joint.sum(axis=0), joint.shape)
    hit = joint > 0
    return float(-(joint[hit] * np.log(joint[hit] / col[hit])).sum() / joint.sum())


@register_estimator("nce", inputs="source_labels")
def nce(source_labels, target_labels) -> float:
    """NCE of source predictions (N,) for target labels (N,): −H(Y | Z) in nats."""
    z, num_z = _predicted(source_labels)
    y, num_classes = target_classes(target_labels)
    check_same_length(source_labels=z, target_labels=y)
    return -_conditional_entropy(_joint_counts(z, y, num_z, num_classes))


def task_hardness(target_labels, *, source_labels=None) -> float:
    """Hardness of the target task as a conditional entropy, in nats: higher = harder.

    Tran et al. estimate how hard a task is as its transferability from a trivial
    source task whose one constant label carries no information, which is the label entropy
    H(Y) = −Σ_y P̂(y) log P̂(y). That is what this returns without ``source_labels``. With them
    it returns H(Y | Z) = −NCE, the hardness left once the source predictions Z are known.
    """
    y, num_classes = target_classes(target_labels)
    if source_labels is None:
        return _conditional_entropy(np.bincount(y, minlength=num_classes)[:, None])
    z, num_z = _predicted(source_labels)
    check_same_length(source_labels=z, target_labels=y)
    return _conditional_entropy(_joint_counts(z, y, num_z, num_classes))


class NCE:
    """Streaming NCE: :meth:`update` adds joint counts, :meth:`compute` equals :func:`nce`."""

    def __init__(self) -> None:
        self._joint = np.zeros((0, 0), dtype=np.int64)

    def update(self, source_labels, target_labels) -> NCE:
        """Add one batch of source predictions and target labels."""
        z, y = _source(source_labels), batch_labels(target_labels)
        check_same_length(source_labels=z, target_labels=y)
        shape = (int(y.max()) + 1, int(z.max()) + 1)
        self._joint = grow(self._joint, shape)
        self._joint[: shape[0], : shape[1]] += _joint_counts(z, y, *shape[::-1])
        return self

    def compute(self) -> float:
        """NCE of all batches so far."""
        check_class_counts(self._joint.sum(axis=1))
        return -_conditional_entropy(self._joint)
