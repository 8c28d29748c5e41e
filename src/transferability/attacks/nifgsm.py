"""NI-FGSM, Nesterov iterative FGSM (Lin et al., "Nesterov Accelerated Gradient and Scale
Invariance for Adversarial Attacks", ICLR 2020)."""

from __future__ import annotations

import torch

from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["NIFGSM", "nesterov_point"]


def nesterov_point(x_adv: torch.Tensor, alpha: float, decay: float, memory: dict) -> torch.Tensor:
    """The look-ahead point ``x_t + α·μ·g_t`` of Lin et al. (2020), Eq. 6 (``x_t`` at first),
    with ``g_t`` the momentum of :meth:`MIFGSM._momentum`, gradients divided by their mean
    absolute value as in the authors' code (``ni_fgsm.py``: ``noise / reduce_mean(abs(noise))``,
    ``x_nes = x + momentum·alpha·grad``), not by the L1 norm the paper writes, which would
    look d = C·H·W times less far ahead."""
    return x_adv if "g" not in memory else x_adv + alpha * decay * memory["g"]


@register_attack("nifgsm")
class NIFGSM(MIFGSM):
    """MI-FGSM whose gradient is taken at the Nesterov look-ahead point.

    Lin et al. (2020), Eq. 6–8: ``x_nes = x_t + α·μ·g_t``,
    ``g_{t+1} = μ·g_t + ∇ₓJ(x_nes)/‖∇ₓJ(x_nes)‖₁``, ``x_{t+1} = clip(x_t + α·sign(g_{t+1}))``,
    with ‖·‖₁ read as the mean absolute value, as the authors' code (and torchattacks) do:
    that sets how far ``x_nes`` looks ahead (see :func:`nesterov_point`).
    Defaults as in the paper: 10 steps of ε/10, μ = 1. One gradient per step. Options as in
    :class:`~transferability.attacks.MIFGSM`.
    """

    def _direction(self, x, x_adv, y, generator, memory):
        point = nesterov_point(x_adv, self.alpha, self.decay, memory)
        return self._momentum(memory, self.gradient(point, y, generator))
