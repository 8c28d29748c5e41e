"""Training a pair against transferability: the gradient-alignment penalty (Adam et al.,
"Reducing adversarial example transferability using gradient regularization", 2019).

Two models are trained jointly on

    CE_a + CE_b + λ·( mean_x |cos(∇ₓℓ_a(x), ∇ₓℓ_b(x))| + γ·mean_x(‖∇ₓℓ_a‖² + ‖∇ₓℓ_b‖²) ),

with both input gradients taken with ``create_graph=True`` (double backprop), so the penalty
reaches the weights. Misaligned input gradients make an adversarial step on one member a
poor step on the other: examples crafted on one transfer less to the other. Liang et al.
(2021) control transfer this way with λ = 5, |cos| and γ = 0.2 (their code adds the penalty
after ``.item()``, which detaches it; here it is differentiated). Adam et al. use the signed
cosine (``absolute=False``) and no norm term (γ = 0, the default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import check_positive
from .base import TrainingMethod, register_training_method

__all__ = ["ModelPair", "GradientAlignmentPenalty", "alignment_penalty"]


class ModelPair(nn.Module):
    """Two models trained together; ``forward`` averages their logits (for evaluation)."""

    def __init__(self, model_a: nn.Module, model_b: nn.Module):
        super().__init__()
        for name, m in (("model_a", model_a), ("model_b", model_b)):
            if not isinstance(m, nn.Module):
                raise ValueError(f"{name}: expected a torch.nn.Module, got {type(m).__name__}")
        self.model_a, self.model_b = model_a, model_b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model_a(x) + self.model_b(x)) / 2


def _losses(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor):
    """Per-sample CE summed (so each sample's input gradient is its own), and its gradient."""
    try:
        loss = F.cross_entropy(model(x), y, reduction="sum")
    except RuntimeError as exc:
        raise ValueError(f"{name}: the pair's models take different inputs; images shaped "
                         f"{tuple(x.shape[1:])} do not fit it: {str(exc).splitlines()[0]}"
                         ) from None
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    return loss / len(x), grad.flatten(1)


def alignment_penalty(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor,
                      y: torch.Tensor, *, absolute: bool = True, norm_weight: float = 0.0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(CE_a, CE_b, penalty)`` on a batch; the penalty is differentiable in the weights."""
    x = x.detach().requires_grad_(True)
    ce_a, g_a = _losses(model_a, "model_a", x, y)
    ce_b, g_b = _losses(model_b, "model_b", x, y)
    cos = F.cosine_similarity(g_a, g_b, dim=1, eps=1e-12)
    penalty = (cos.abs() if absolute else cos).mean()
    if norm_weight:
        penalty = penalty + norm_weight * (g_a.square().sum(1) + g_b.square().sum(1)).mean()
    return ce_a, ce_b, penalty


@register_training_method("gradient_alignment_penalty")
class GradientAlignmentPenalty(TrainingMethod):
    """Train a :class:`ModelPair` with the penalty (see the module docstring).

    Options: ``lam`` (λ ≥ 0, default 5.0), ``absolute`` (|cos|, default true),
    ``norm_weight`` (γ ≥ 0, default 0).
    """

    def __init__(self, lam: float = 5.0, absolute: bool = True, norm_weight: float = 0.0,
                 **options):
        super().__init__(**options)
        self.options = {"lam": check_positive(lam, "lam", allow_zero=True),
                        "absolute": bool(absolute),
                        "norm_weight": check_positive(norm_weight, "norm_weight",
                                                      allow_zero=True)}

    def loss(self, model, x, y):
        if not isinstance(model, ModelPair):
            raise ValueError("model: the gradient-alignment penalty trains a ModelPair(model_a, "
                             f"model_b), got {type(model).__name__}")
        ce_a, ce_b, penalty = alignment_penalty(
            model.model_a, model.model_b, x, y, absolute=self.options["absolute"],
            norm_weight=self.options["norm_weight"])
        return ce_a + ce_b + self.options["lam"] * penalty
