"""PGN, the penalised gradient norm attack (Ge et al., "Boosting Adversarial
Transferability by Achieving Flat Local Maxima", NeurIPS 2023)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive, check_unit_interval
from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["PGN"]


@register_attack("pgn", randomized=True, grads_per_step=40, quick={"samples": 2})
class PGN(MIFGSM):
    """MI-FGSM on a gradient averaged over random neighbours and their look-back points,
    a finite-difference approximation of the gradient of a gradient-norm penalty.

    Ge et al. (2023), Alg. 1: for each of N neighbours ``x' = x_t + r``,
    ``r ~ U[−ζ·ε, ζ·ε]^d``: ``g' = ∇ₓJ(x')``, ``x* = x' − α·g'/mean|g'|``, ``g* = ∇ₓJ(x*)``;
    the step's gradient is ``ḡ = (1/N)·Σ ((1 − δ)·g' + δ·g*)`` (Eq. 11), followed by the
    momentum of MI-FGSM. Paper defaults: N = 20, ζ = 3, δ = 0.5, 10 steps of ε/10, μ = 1.
    Each step costs 2N gradients, batched ``copies_batch`` neighbours at a time.

    Args:
        samples: N; zeta: ζ; delta: δ (the balance between ``g'`` and ``g*``).
        **options: as in :class:`~transferability.attacks.MIFGSM`.
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, samples: int = 20, zeta: float = 3.0, delta: float = 0.5,
                 **options):
        super().__init__(model, eps, alpha, steps, **options)
        self.samples = check_int(samples, "samples")
        self.zeta = check_positive(zeta, "zeta")
        self.delta = check_unit_interval(delta, "delta")

    def _direction(self, x, x_adv, y, generator, memory):
        noise = torch.rand((self.samples, *x_adv.shape), generator=generator,
                           device=x_adv.device, dtype=x_adv.dtype)
        near = x_adv + (2 * noise - 1) * (self.zeta * self.eps)
        g_near = self.gradients(near, y, generator)
        scale = g_near.abs().mean(dim=(2, 3, 4), keepdim=True).clamp_min(1e-12)
        g_back = self.gradients(near - self.alpha * g_near / scale, y, generator)
        grad = ((1 - self.delta) * g_near + self.delta * g_back).mean(0)
        return self._momentum(memory, grad)
