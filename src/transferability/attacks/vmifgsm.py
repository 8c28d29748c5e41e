"""VMI-FGSM, variance-tuned MI-FGSM (Wang & He, "Enhancing the Transferability of
Adversarial Attacks through Variance Tuning", CVPR 2021)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive
from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["VMIFGSM"]


@register_attack("vmifgsm", randomized=True, grads_per_step=21, quick={"samples": 2})
class VMIFGSM(MIFGSM):
    """MI-FGSM whose gradient is corrected by the previous step's gradient variance.

    Wang & He (2021), Alg. 1: ``ĝ = ∇ₓJ(x_t)``, ``g_{t+1} = μ·g_t + (ĝ + v_t)/‖ĝ + v_t‖₁``
    and ``v_{t+1} = (1/N)·Σᵢ ∇ₓJ(x_t + rᵢ) − ĝ`` with ``rᵢ ~ U[−β·ε, β·ε]^d`` (Eq. 5);
    ``v_0 = 0``. Paper defaults: N = 20 samples, β = 1.5, 10 steps of ε/10, μ = 1. Each step
    costs N + 1 gradients; the N neighbours go through the model ``copies_batch`` at a time.

    Args:
        samples: N, the neighbours drawn per step.
        beta: β, the neighbourhood's radius relative to ε.
        **options: as in :class:`~transferability.attacks.MIFGSM`.
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, samples: int = 20, beta: float = 1.5, **options):
        super().__init__(model, eps, alpha, steps, **options)
        self.samples = check_int(samples, "samples")
        self.beta = check_positive(beta, "beta")

    def _point(self, x_adv: torch.Tensor, memory: dict) -> torch.Tensor:
        """Where ``ĝ`` is taken: ``x_t`` (VNI-FGSM looks ahead)."""
        return x_adv

    def _direction(self, x, x_adv, y, generator, memory):
        grad = self.gradient(self._point(x_adv, memory), y, generator)
        tuned = grad if "v" not in memory else grad + memory["v"]
        direction = self._momentum(memory, tuned)
        radius = self.beta * self.eps
        noise = torch.rand((self.samples, *x_adv.shape), generator=generator,
                           device=x_adv.device, dtype=x_adv.dtype)
        neighbours = x_adv + (2 * noise - 1) * radius
        memory["v"] = self.gradients(neighbours, y, generator).mean(0) - grad
        return direction
