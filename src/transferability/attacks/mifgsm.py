"""MI-FGSM, momentum iterative FGSM (Dong et al., "Boosting Adversarial Attacks with
Momentum", CVPR 2018)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_positive
from .pgd import PGD
from .registry import register_attack

__all__ = ["MIFGSM", "mifgsm"]


@register_attack("mifgsm")
class MIFGSM(PGD):
    """Iterative FGSM whose step follows an accumulated, L1-normalised gradient.

    Dong et al. (2018), Eq. 6–7: ``g_{t+1} = μ·g_t + ∇ₓJ(x_t, y)/‖∇ₓJ(x_t, y)‖₁`` and
    ``x_{t+1} = clip(x_t + α·sign(g_{t+1}))`` (``α·g/‖g‖₂`` for L2, their Eq. 8). Momentum
    stabilises the direction and makes the examples transfer better. With ``decay=0`` it
    is exactly BIM.

    Args:
        alpha: step size; defaults to ``ε/steps`` as in the paper.
        steps: number of iterations (10 in the paper).
        decay: the momentum factor μ (1.0 in the paper).
        random_start: off by default, as in the paper.
        **options: as in :class:`~transferability.attacks.base.Attack`.
    """

    alpha_factor = 1.0

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, decay: float = 1.0, random_start: bool = False,
                 **options):
        super().__init__(model, eps, alpha, steps, random_start=random_start, **options)
        self.decay = check_positive(decay, "decay", allow_zero=True)

    def _direction(self, x, x_adv, y, generator, memory):
        return self._momentum(memory, self.gradient(x_adv, y, generator))

    def _momentum(self, memory: dict, grad: torch.Tensor) -> torch.Tensor:
        """``g ← μ·g + grad/mean|grad|`` (Eq. 6), kept in ``memory["g"]`` and returned.

        The paper divides by ‖grad‖₁; the authors' code (and torchattacks) by the mean
        ``‖grad‖₁/d``, d = C·H·W. The step uses ``sign(g)`` (or ``g/‖g‖₂``), which the
        factor d leaves alone, but NI-FGSM's look-ahead ``x + α·μ·g`` does not: we keep
        the code's scale, which is what users mean by "the same attack".
        """
        scale = grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(
            torch.finfo(grad.dtype).tiny)  # 0/0 only: the authors' code has no floor
        g = grad / scale
        if "g" in memory:
            g = self.decay * memory["g"] + g
        memory["g"] = g
        return g


def mifgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, eps: float,
           alpha: float | None = None, steps: int = 10, decay: float = 1.0,
           **options) -> torch.Tensor:
    """Functional form of :class:`MIFGSM`."""
    return MIFGSM(model, eps, alpha, steps, decay=decay, **options)(x, y)
