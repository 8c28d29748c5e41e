"""TI, translation invariance (Dong et al., "Evading Defenses to Transferable Adversarial
Examples by Translation-Invariant Attacks", CVPR 2019).

TI smooths each input gradient with a Gaussian kernel, which approximates the gradient
averaged over translated copies (their Eq. 8), so it composes with every attack as a
``gradient_transform``: ``MIFGSM(model, eps, gradient_transform=TI())`` is TI-MI-FGSM and
adding ``input_transform=DI()`` makes TI-DIM.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validation import check_int, check_positive
from .mifgsm import MIFGSM
from .registry import register_preset

__all__ = ["TI"]


class TI:
    """Convolve the gradient, channel by channel, with a normalised Gaussian kernel.

    Dong et al. (2019), Eq. 8: ``W ∗ ∇ₓJ``, with ``W`` the Gaussian of ``kernel_size`` taps
    over ``[−nsig·σ, nsig·σ]`` (the authors use 15 taps and nsig = 3 on 299-pixel images).
    The kernel is scaled to the image: ``round(kernel_size·W/reference_size)`` taps, made
    odd and at least 3; ``reference_size=None`` keeps ``kernel_size`` as given.
    """

    def __init__(self, kernel_size: int = 15, nsig: float = 3.0,
                 reference_size: int | None = 299):
        self.kernel_size = check_int(kernel_size, "kernel_size")
        self.nsig = check_positive(nsig, "nsig")
        self.reference_size = (None if reference_size is None
                               else check_int(reference_size, "reference_size"))
        self._kernels: dict = {}

    def __repr__(self) -> str:
        return (f"TI(kernel_size={self.kernel_size!r}, nsig={self.nsig!r}, "
                f"reference_size={self.reference_size!r})")

    def size_for(self, width: int) -> int:
        """The number of taps used on images ``width`` pixels wide."""
        if self.reference_size is None:
            return self.kernel_size
        taps = round(self.kernel_size * width / self.reference_size)
        return max(3, taps + 1 - taps % 2)

    def kernel(self, taps: int) -> torch.Tensor:
        """The taps×taps kernel (float64, sums to 1)."""
        t = torch.linspace(-self.nsig, self.nsig, taps, dtype=torch.float64)
        k1 = torch.exp(-t ** 2 / 2) / math.sqrt(2 * math.pi)
        k2 = torch.outer(k1, k1)
        return k2 / k2.sum()

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        taps, channels = self.size_for(grad.shape[-1]), grad.shape[1]
        key = (taps, channels, grad.device, grad.dtype)
        if key not in self._kernels:
            self._kernels[key] = (self.kernel(taps).to(grad.device, grad.dtype)
                                  .expand(channels, 1, taps, taps).contiguous())
        return F.conv2d(grad, self._kernels[key], padding=taps // 2, groups=channels)


register_preset("ti", MIFGSM, gradient_transform=TI,
                summary="TI-MI-FGSM (Dong et al. 2019): MI-FGSM with the gradient smoothed by a "
                        "Gaussian kernel")
