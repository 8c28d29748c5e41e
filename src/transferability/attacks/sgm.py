"""SGM, the skip gradient method (Wu et al., "Skip Connections Matter: On the
Transferability of Adversarial Examples Generated with ResNets", ICLR 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .._validation import check_unit_interval
from ._hooks import activations, residual_blocks, scaled_backward
from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["SGM"]


@register_attack("sgm")
class SGM(MIFGSM):
    """Iterative FGSM whose backward pass decays the gradient through residual branches.

    Wu et al. (2020), Eq. 5: with ``z_{i+1} = z_i + f_i(z_i)``, the gradient
    ``∏ (1 + γ·∂f_i/∂z_i)`` favours the skip connections. The gradient through every
    activation inside the chosen residual blocks is multiplied by γ (the forward pass is
    unchanged); the authors use γ = 0.2 for ResNets, with 10 steps of ε/10 (``decay=1``
    gives the momentum variant). DI and TI compose with it.

    Which blocks: by default every residual block but the model's first, as the authors'
    current code does (csdongxian/skip-connections-matter ``utils_sgm.py`` skips
    ``layer1.0``; a model with one block keeps it). ``blocks="all"`` scales every block, as
    Eq. 5 reads (and this library did before); the ``torchattack`` package skips the first block
    of every stage (``'0.relu' not in name``: name the blocks to get it). From ResNet-20 to
    ResNet-32/44/56 on CIFAR-10 at ε = 8/255 they fool 0.64 (default), 0.66 (all) and
    0.86 (torchattack's): docs/audit.md.

    Args:
        gamma: γ in (0, 1].
        blocks: names of the residual blocks, or ``"all"``; by default every module whose
            class is a Block or Bottleneck but the first. A model without residual blocks
            is refused.
        **options: as in :class:`~transferability.attacks.MIFGSM` (``decay`` defaults to 0).
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, gamma: float = 0.2, blocks: Sequence[str] | None = None,
                 decay: float = 0.0, **options):
        super().__init__(model, eps, alpha, steps, decay=decay, **options)
        self.gamma = check_unit_interval(gamma, "gamma")
        if self.gamma == 0:
            raise ValueError("gamma: expected a value in (0, 1], got 0")
        every = blocks is None or blocks == "all"
        found = list(residual_blocks(model, None if every else blocks))
        self.blocks = found[1:] if blocks is None and len(found) > 1 else found

    def perturb(self, x, y, generator):
        blocks = residual_blocks(self.model, self.blocks).values()
        with scaled_backward(activations(blocks), self.gamma):
            return super().perturb(x, y, generator)
