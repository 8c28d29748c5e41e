"""SGM, the skip gradient method (Wu et al., "Skip Connections Matter: On the
Transferability of Adversarial Examples Generated with ResNets", ICLR 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .._validation import check_unit_interval
from ._hooks import activations, residual_blocks, scaled_backward
from .mifgsm import MIFGSM

__all__ = ["SGM"]


class SGM(MIFGSM):
    """Iterative FGSM whose backward pass decays the gradient through residual branches.

    Wu et al. (2020), Eq. 5: with ``z_{i+1} = z_i + f_i(z_i)``, the gradient
    ``∏ (1 + γ·∂f_i/∂z_i)`` favours the skip connections. As in the authors' code, the
    gradient through every activation inside a residual block is multiplied by γ (the
    forward pass is unchanged); they use γ = 0.2 for ResNets, with 10 steps of ε/10
    (``decay=1`` gives the momentum variant). DI and TI compose with it.

    Args:
        gamma: γ in (0, 1].
        blocks: names of the residual blocks; by default, every module whose class is a
            Block or Bottleneck. A model without residual blocks is refused.
        **options: as in :class:`~transferability.attacks.MIFGSM` (``decay`` defaults to 0).
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, gamma: float = 0.2, blocks: Sequence[str] | None = None,
                 decay: float = 0.0, **options):
        super().__init__(model, eps, alpha, steps, decay=decay, **options)
        self.gamma = check_unit_interval(gamma, "gamma")
        if self.gamma == 0:
            raise ValueError("gamma: expected a value in (0, 1], got 0")
        self.blocks = list(residual_blocks(model, blocks))

    def perturb(self, x, y, generator):
        blocks = residual_blocks(self.model, self.blocks).values()
        with scaled_backward(activations(blocks), self.gamma):
            return super().perturb(x, y, generator)
