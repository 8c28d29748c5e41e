"""The closed-form affine-fit knowledge metric (Liang et al., ICML 2021, Sec. 3 and 5).

Knowledge transfer from a source to a target is measured by how well an *affine* map of the
source's outputs (logits or features) reproduces the target: the target task's labels
(one-hot) or another model's outputs. Least squares with a free bias, optionally ridge:

    min_{W, b}  Σᵢ ‖W sᵢ + b − tᵢ‖² + λ‖W‖²_F

Centring both sides gives b exactly (the bias is not penalised), so W solves a plain
(ridge) least-squares problem on the centred data. The loss is reported normalised by the
target's total variance, Σᵢ‖residualᵢ‖² / Σᵢ‖tᵢ − t̄‖² (the fraction of variance left
unexplained, 1 − R²): 0 for an exact affine fit, 1 for no better than the constant mean.
Lower = better transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import Result
from .._validation import as_float64, as_labels, check_positive, check_same_length

__all__ = ["AffineMap", "fit_affine", "affine_fit_loss", "as_targets"]


@dataclass(frozen=True, eq=False)  # holds tensors/arrays: compare fields
class AffineMap(Result):
    """``s ↦ s W + b``: ``weight`` D × K, ``bias`` K."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, source_outputs) -> np.ndarray:
        s = as_float64(source_outputs, "source_outputs", ndim=2)
        if s.shape[1] != self.weight.shape[0]:
            raise ValueError(f"source_outputs: expected {self.weight.shape[0]} columns, got "
                             f"{s.shape[1]}")
        return s @ self.weight + self.bias


def as_targets(target, num_classes: int | None = None) -> np.ndarray:
    """Targets as an N × K float64 array: 1-D class labels become one-hot columns.

    A 2-D array (another model's outputs, regression targets) is used as it is; for a
    single regression target pass shape (N, 1).
    """
    arr = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target)
    if arr.ndim == 1:
        labels = as_labels(arr, "target", num_classes=num_classes, contiguous=False)
        k = int(labels.max()) + 1 if num_classes is None else num_classes
        return np.eye(k)[labels]
    return as_float64(arr, "target", ndim=2)


def fit_affine(source_outputs, target, *, ridge: float = 0.0) -> AffineMap:
    """Least-squares affine map from ``source_outputs`` (N × D) to ``target`` (see module).

    ``ridge`` (λ ≥ 0, absolute) penalises ‖W‖²_F; with λ = 0 the minimum-norm solution is
    taken, so rank-deficient sources (N ≤ D, dead units) are fine.
    """
    s = as_float64(source_outputs, "source_outputs", ndim=2)
    t = as_targets(target)
    check_same_length(source_outputs=s, target=t)
    ridge = check_positive(ridge, "ridge", allow_zero=True)
    s_mean, t_mean = s.mean(axis=0), t.mean(axis=0)
    sc, tc = s - s_mean, t - t_mean
    if ridge == 0:
        weight = np.linalg.lstsq(sc, tc, rcond=None)[0]
    else:
        weight = np.linalg.solve(sc.T @ sc + ridge * np.eye(s.shape[1]), sc.T @ tc)
    return AffineMap(weight=weight, bias=t_mean - s_mean @ weight)


def affine_fit_loss(source_outputs, target, *, ridge: float = 0.0, normalize: bool = True,
                    held_out: tuple | None = None) -> float:
    """Residual of the best affine fit of ``target`` from ``source_outputs``; lower = better.

    Normalised by the target's total variance (see module) unless ``normalize=False``, which
    gives the mean squared residual per sample, (1/N) Σᵢ ‖W sᵢ + b − tᵢ‖². With ``held_out =
    (source_outputs, target)`` the map fitted here is scored on those samples instead
    (normalised by their own variance, as R² on a test set).
    """
    fitted = fit_affine(source_outputs, target, ridge=ridge)
    if held_out is not None:
        source_outputs, target = held_out
    s = as_float64(source_outputs, "source_outputs", ndim=2)
    t = as_targets(target, num_classes=len(fitted.bias) if np.ndim(target) == 1 else None)
    check_same_length(source_outputs=s, target=t)
    if t.shape[1] != len(fitted.bias):
        raise ValueError(f"target: expected {len(fitted.bias)} columns as in the fit, got "
                         f"{t.shape[1]}")
    residual = float(np.square(fitted(s) - t).sum())
    if not normalize:
        return residual / len(t)
    total = float(np.square(t - t.mean(axis=0)).sum())
    if total == 0:
        raise ValueError("target: is constant, so the normalised loss is undefined; pass "
                         "normalize=False")
    return residual / total
