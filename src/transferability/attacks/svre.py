"""SVRE, stochastic variance-reduced ensemble attack (Xiong et al., "Stochastic Variance
Reduced Ensemble Adversarial Attack for Boosting the Adversarial Transferability",
CVPR 2022)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..models.ensemble import Ensemble
from . import norms
from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["SVRE"]


@register_attack("svre", needs_ensemble=True, randomized=True, grads_per_step=None)
class SVRE(MIFGSM):
    """MI-FGSM on an :class:`~transferability.models.Ensemble` whose step comes from an
    inner loop of variance-reduced single-member gradients.

    Xiong et al. (2022), Alg. 1: at ``x_t`` the ensemble gradient ``g_ens = (1/K)·Σₖ ∇Jₖ(x_t)``;
    then ``M`` inner steps from ``x̃_0 = x_t``, each with a random member k:
    ``g̃ = ∇Jₖ(x̃_m) − (∇Jₖ(x_t) − g_ens)``, ``G ← μ₂·G + g̃/‖g̃‖₁``,
    ``x̃_{m+1} = clip(x̃_m + β·sign(G))``; the outer step is MI-FGSM on ``G``. Paper
    defaults: M = 4K, β = α = ε/10, μ = μ₂ = 1, 10 steps. A step costs K + M gradients.

    Args:
        inner_steps: M (default 4K); inner_alpha: β (default α); inner_decay: μ₂.
        **options: as in :class:`~transferability.attacks.MIFGSM`.
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, inner_steps: int | None = None,
                 inner_alpha: float | None = None, inner_decay: float = 1.0, **options):
        if not isinstance(model, Ensemble):
            raise ValueError(f"model: SVRE attacks an Ensemble of surrogates, got "
                             f"{type(model).__name__}")
        super().__init__(model, eps, alpha, steps, **options)
        self.inner_steps = (4 * len(model) if inner_steps is None
                            else check_int(inner_steps, "inner_steps"))
        self.inner_alpha = (self.alpha if inner_alpha is None
                            else check_positive(inner_alpha, "inner_alpha"))
        self.inner_decay = check_positive(inner_decay, "inner_decay", allow_zero=True)

    def member_gradient(self, k: int, x_adv: torch.Tensor, y: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        """∇ₓ of the objective on member ``k`` alone."""
        member, whole = self.model.members[k], self._model_objective
        self._model_objective = lambda inputs, labels, objective: objective(member(inputs),
                                                                              labels)
        try:
            return self.gradient(x_adv, y, generator)
        finally:
            self._model_objective = whole

    def _direction(self, x, x_adv, y, generator, memory):
        members = len(self.model)
        at_start = [self.member_gradient(k, x_adv, y, generator) for k in range(members)]
        g_ens = torch.stack(at_start).mean(0)
        inner, inner_memory = x_adv, {}
        for _ in range(self.inner_steps):
            k = int(torch.randint(0, members, (), generator=generator, device=x.device))
            grad = self.member_gradient(k, inner, y, generator) - (at_start[k] - g_ens)
            l1 = grad.abs().flatten(1).sum(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            big_g = grad / l1 + self.inner_decay * inner_memory.get("G", 0)
            inner_memory["G"] = big_g
            inner = inner + self.inner_alpha * norms.step_direction(big_g, self.norm)
            inner = norms.clip(x, inner, self.eps, self.norm)
        return self._momentum(memory, inner_memory["G"])
