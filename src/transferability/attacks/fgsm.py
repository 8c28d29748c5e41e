"""FGSM, the fast gradient sign method (Goodfellow, Shlens & Szegedy, ICLR 2015)."""

from __future__ import annotations

import torch
from torch import nn

from . import norms
from .base import Attack
from .registry import register_attack

__all__ = ["FGSM", "fgsm"]


@register_attack("fgsm", takes_steps=False)
class FGSM(Attack):
    """One step of size ε along the gradient's steepest-ascent direction.

    Goodfellow et al. (2015), Eq. 3: ``x' = x + ε·sign(∇ₓJ(x, y))``, clipped to [0, 1]; with
    ``norm="l2"`` the step is ``ε·∇/‖∇‖₂`` (the fast gradient method). Options as in
    :class:`~transferability.attacks.base.Attack`.
    """

    checks_in_gradient = True

    def __init__(self, model: nn.Module, eps: float, **options):
        super().__init__(model, eps, **options)

    def perturb(self, x: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator | None) -> torch.Tensor:
        grad = self.gradient(x, y, generator)
        x_adv = x + self.eps * norms.step_direction(grad, self.norm)
        return norms.clip(x, x_adv, self.eps, self.norm)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, eps: float,
         **options) -> torch.Tensor:
    """Functional form of :class:`FGSM`: ``FGSM(model, eps, **options)(x, y)``."""
    return FGSM(model, eps, **options)(x, y)
