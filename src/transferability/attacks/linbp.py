"""LinBP, linear back-propagation (Guo, Li & Chen, "Backpropagating Linearly Improves
Transferability of Adversarial Examples", NeurIPS 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ._hooks import activations, linear_backward, residual_blocks
from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["LinBP"]


@register_attack("linbp")
class LinBP(MIFGSM):
    """Iterative FGSM whose backward pass treats the activations of the later residual
    blocks as the identity (Guo et al. 2020, Eq. 4); the forward pass is unchanged.

    Args:
        start: the first block whose activations are linearised; by default the middle
            one of the residual blocks found (the paper starts in ResNet-50's third stage).
            The re-normalisation of the residual branches (their Sec. 3.2) is not applied.
        **options: as in :class:`~transferability.attacks.MIFGSM` (``decay`` defaults to 0,
            10 steps of ε/10).
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, start: str | None = None, decay: float = 0.0,
                 blocks: Sequence[str] | None = None, **options):
        super().__init__(model, eps, alpha, steps, decay=decay, **options)
        names = list(residual_blocks(model, blocks))
        if start is None:
            start = names[len(names) // 2]
        if start not in names:
            raise ValueError(f"start: {start!r} is not one of the residual blocks "
                             f"{names}")
        self.start = start
        self.blocks = names[names.index(start):]

    def perturb(self, x, y, generator):
        blocks = residual_blocks(self.model, self.blocks).values()
        with linear_backward(activations(blocks)):
            return super().perturb(x, y, generator)
