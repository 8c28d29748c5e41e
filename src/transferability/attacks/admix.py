"""Admix (Wang et al., "Admix: Enhancing the Transferability of Adversarial Attacks",
ICCV 2021): an input transform that mixes in other images, then scales.

``MIFGSM(model, eps, input_transform=Admix())`` is the paper's Admix-MI-FGSM (the
registry's ``"admix"``); DI and TI compose with it as in the paper's Admix-TI-DIM.
"""

from __future__ import annotations

import torch

from .._validation import check_int, check_unit_interval
from .di import DI
from .mifgsm import MIFGSM
from .registry import register_preset

__all__ = ["Admix"]


class Admix:
    """``m2`` admixed images ``x + η·x'`` (``x'`` another image of the batch, a constant for
    the gradient), each scaled by ``1/2ⁱ`` for ``i < m1``: ``m1·m2`` copies.

    Wang et al. (2021), Eq. 5 and Alg. 1; defaults as in the paper: m1 = 5 scales,
    m2 = 3 mixes, η = 0.2. The partner images are random permutations of the batch, drawn
    from the attack's generator.
    """

    def __init__(self, scales: int = 5, mixes: int = 3, strength: float = 0.2):
        self.scales = check_int(scales, "scales", maximum=30)
        self.mixes = check_int(mixes, "mixes", maximum=30)
        self.strength = check_unit_interval(strength, "strength")

    def __repr__(self) -> str:
        return f"Admix(scales={self.scales!r}, mixes={self.mixes!r}, strength={self.strength!r})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        partners = [x.detach()[torch.randperm(len(x), generator=generator, device=x.device)]
                    for _ in range(self.mixes)]
        mixed = torch.cat([x + self.strength * p for p in partners])
        return torch.cat([mixed / 2 ** i for i in range(self.scales)])


register_preset("admix", MIFGSM, transform=Admix, also=(DI,), randomized=True, grads_per_step=15,
                summary="Admix (Wang et al. 2021): MI-FGSM on inputs mixed with other images")
