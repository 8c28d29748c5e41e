"""SI, scale invariance (Lin et al., "Nesterov Accelerated Gradient and Scale Invariance for
Adversarial Attacks", ICLR 2020): an input transform that makes ``copies`` scaled copies.

``NIFGSM(model, eps, input_transform=SI())`` is SI-NI-FGSM (the registry's ``"si"``).
"""

from __future__ import annotations

import torch

from .._validation import check_int
from .di import DI
from .nifgsm import NIFGSM
from .registry import register_preset

__all__ = ["SI"]


class SI:
    """The copies ``Sᵢ(x) = x/2ⁱ`` for ``i = 0 … m−1`` (Lin et al. 2020, Eq. 9, m = 5); the
    attack averages the gradient over them, so a step costs m gradients."""

    def __init__(self, copies: int = 5):
        self.copies = check_int(copies, "copies", maximum=30)

    def __repr__(self) -> str:
        return f"SI(copies={self.copies!r})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.cat([x / 2 ** i for i in range(self.copies)])


register_preset("si", NIFGSM, transform=SI, also=(DI,), grads_per_step=5,
                summary="SI-NI-FGSM (Lin et al. 2020): NI-FGSM averaged over scaled copies")
