"""Gradient alignment of two models (Adam et al., "Reducing adversarial example
transferability using gradient regularization", 2019).

For each sample the cosine between the input gradients of the two models' cross-entropy
losses, cos(∇ₓℓ_A(x), ∇ₓℓ_B(x)); its mean is the alignment. Aligned gradients mean that a
step up one model's loss also climbs the other's, so adversarial examples transfer. The
ratio of gradient norms ‖∇ₓℓ_A‖/‖∇ₓℓ_B‖ is what Adam et al. use to explain why transfer
between two models can be asymmetric.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._results import Result
from .._validation import check_images, check_int, check_labels_tensor, check_same_device
from ._gradients import _TINY, cosine, input_gradients

__all__ = ["AlignmentResult", "gradient_alignment", "loss_gradients"]


@dataclass(frozen=True, eq=False)  # holds tensors/arrays: compare fields
class AlignmentResult(Result):
    """Mean and per-sample gradient cosine, and per-sample and mean ‖∇ₓℓ_A‖/‖∇ₓℓ_B‖."""

    mean: float
    per_sample: torch.Tensor
    norm_ratio: torch.Tensor
    mean_norm_ratio: float

    def __float__(self) -> float:
        return self.mean


def loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                   batch_size: int = 256) -> torch.Tensor:
    """∇ₓ of each sample's cross-entropy (float64, CPU, shaped like ``x``).

    Without ``y`` each sample's loss is taken on the model's own prediction.
    """
    def objective(logits: torch.Tensor, *labels: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2:
            raise ValueError(f"model: expected outputs shaped N×C, got {tuple(logits.shape)}")
        target = labels[0] if labels else logits.argmax(dim=1)
        if labels:
            check_labels_tensor(target, "y", num_classes=logits.shape[1])
        return F.cross_entropy(logits, target, reduction="sum")

    labels = () if y is None else (check_labels_tensor(y, "y", n=len(x)),)
    return input_gradients(model, objective, x, *labels, batch_size=batch_size)


def gradient_alignment(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor,
                       y: torch.Tensor | None = None, *, batch_size: int = 256
                       ) -> AlignmentResult:
    """Cosine between the two models' input gradients of their losses (Adam et al. 2019).

    ``y`` holds labels valid for both models; without it each model's loss is taken on its
    own prediction (so models with different classes can be compared). Models are put in
    eval mode with frozen parameters, restored afterwards.
    """
    check_same_device(model_a=model_a, model_b=model_b)
    x = check_images(x, "x")
    batch_size = check_int(batch_size, "batch_size")
    if len(x) == 0:
        raise ValueError("x: is an empty batch")
    ga = loss_gradients(model_a, x, y, batch_size=batch_size)
    gb = loss_gradients(model_b, x, y, batch_size=batch_size)
    cos = cosine(ga, gb)
    ratio = ga.flatten(1).norm(dim=1) / gb.flatten(1).norm(dim=1).clamp_min(_TINY)
    return AlignmentResult(mean=float(cos.mean()), per_sample=cos, norm_ratio=ratio,
                           mean_norm_ratio=float(ratio.mean()))
