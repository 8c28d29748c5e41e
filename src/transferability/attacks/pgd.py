"""PGD (Madry et al., ICLR 2018) and, without the random start, BIM (Kurakin et al., 2017)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive
from . import norms
from .base import Attack
from .registry import register_attack, register_preset

__all__ = ["PGD", "pgd"]


@register_attack("pgd", randomized=True)
class PGD(Attack):
    """Projected gradient ascent on the attack objective inside the ε-ball.

    ``x_{t+1} = Π_{B(x,ε) ∩ [0,1]}(x_t + α·d(∇ₓJ(x_t, y)))`` with ``d = sign`` for L∞ and
    ``d = ∇/‖∇‖₂`` for L2 (Madry et al. 2018, Eq. 2). ``random_start`` draws ``x_0``
    uniformly from the ball; without it ``x_0 = x`` and this is the basic iterative method
    (Kurakin, Goodfellow & Bengio 2017, "I-FGSM").

    Args:
        alpha: step size; defaults to ``2.5·ε/steps`` (Madry et al.'s rule of thumb).
        steps: number of iterations.
        random_start: start from a uniformly random point of the ε-ball.
        **options: as in :class:`~transferability.attacks.base.Attack` (``norm``,
            ``targeted``, ``loss``, ``use_predictions``, ``seed``, ``input_transform``).
    """

    #: the default step size is ``alpha_factor·ε/steps``
    alpha_factor = 2.5
    checks_in_gradient = True

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, random_start: bool = True, **options):
        super().__init__(model, eps, **options)
        self.steps = check_int(steps, "steps")
        self.alpha = (self.alpha_factor * self.eps / self.steps if alpha is None
                      else check_positive(alpha, "alpha"))
        self.random_start = bool(random_start)

    def perturb(self, x: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator | None) -> torch.Tensor:
        x_adv = x
        if self.random_start and self.eps > 0:
            x_adv = norms.random_start(x, self.eps, self.norm, generator)
        memory: dict = {}
        for _ in range(self.steps):
            direction = self._direction(x, x_adv, y, generator, memory)
            x_adv = norms.clip(x, norms.ascend(x_adv, direction, self.alpha, self.norm),
                               self.eps, self.norm)
        return x_adv

    def _direction(self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
                   generator: torch.Generator | None, memory: dict) -> torch.Tensor:
        """The vector whose steepest-ascent direction is this step's; plain PGD uses the
        gradient. ``memory`` carries state (momentum, variance) from step to step."""
        return self.gradient(x_adv, y, generator)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, eps: float,
        alpha: float | None = None, steps: int = 10, **options) -> torch.Tensor:
    """Functional form of :class:`PGD`: ``PGD(model, eps, alpha, steps, **options)(x, y)``."""
    return PGD(model, eps, alpha, steps, **options)(x, y)


register_preset("bim", PGD, fixed={"random_start": False}, randomized=False,
                summary="BIM (Kurakin et al. 2017): PGD without the random start")
