"""DI, input diversity (Xie et al., "Improving Transferability of Adversarial Examples with
Input Diversity", CVPR 2019).

DI is not an attack of its own but an input transform that any attack applies before each
forward pass (``input_transform=DI()``), so it composes with every attack::

    PGD(model, eps, random_start=False, input_transform=DI(p=0.5))   # DI²-FGSM
    MIFGSM(model, eps, input_transform=DI(p=0.5))                    # M-DI²-FGSM

The registry names ``"di"`` and ``"mi-di"`` build exactly these two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_positive, check_unit_interval
from .mifgsm import MIFGSM
from .pgd import PGD
from .registry import register_preset

__all__ = ["DI"]


class DI:
    """Random resize and random zero-padding, applied with probability ``p``.

    Xie et al. (2019), Eq. 1 and Sec. 3.1: ``T(x; p)`` resizes the image to a random
    ``rnd×rnd`` and pads it with zeros at a random offset, with probability ``p``, else
    returns ``x``. One draw serves the whole batch, as in the authors' code. The size range
    follows torchattacks: with ``W' = int(W·resize_rate)``, ``rnd`` is drawn from
    ``[min(W, W'), max(W, W'))`` and the result is padded to ``max(W, W')`` (the paper uses
    299 → [299, 330), i.e. ``resize_rate ≈ 1.1``; the default 0.9 keeps the size). Models
    with adaptive pooling accept either.

    Args:
        p: probability of transforming a forward pass.
        resize_rate: size of the range of resizes, relative to the image.
        mode: interpolation for the resize (the paper uses ``"nearest"``; bilinear gives
            gradients to every pixel when shrinking).
    """

    def __init__(self, p: float = 0.5, resize_rate: float = 0.9, mode: str = "bilinear"):
        self.p = check_unit_interval(p, "p")
        self.resize_rate = check_positive(resize_rate, "resize_rate")
        self.mode = check_choice(mode, "mode", ("bilinear", "nearest", "bicubic", "area"))

    def __repr__(self) -> str:
        return f"DI(p={self.p!r}, resize_rate={self.resize_rate!r}, mode={self.mode!r})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Transform a batch N×C×H×W (differentiably); ``generator`` makes it reproducible."""
        if torch.rand((), generator=generator, device=x.device).item() >= self.p:
            return x
        (h, w) = x.shape[-2:]
        lo_h, hi_h = sorted((h, int(h * self.resize_rate)))
        lo_w, hi_w = sorted((w, int(w * self.resize_rate)))
        if lo_h == hi_h and lo_w == hi_w:
            return x
        # One uniform fraction sets both sides, so square images stay square.
        t = torch.rand((), generator=generator, device=x.device).item()
        rh, rw = lo_h + int(t * (hi_h - lo_h)), lo_w + int(t * (hi_w - lo_w))
        resized = F.interpolate(x, size=(rh, rw), mode=self.mode,
                                **({} if self.mode in ("nearest", "area") else
                                   {"align_corners": False}))
        top = int(torch.randint(0, hi_h - rh + 1, (), generator=generator, device=x.device))
        left = int(torch.randint(0, hi_w - rw + 1, (), generator=generator, device=x.device))
        return F.pad(resized, (left, hi_w - rw - left, top, hi_h - rh - top), value=0.0)


register_preset("di", PGD, transform=DI, own_transform=True, fixed={"random_start": False},
                randomized=True,
                summary="DI²-FGSM (Xie et al. 2019): BIM on randomly resized and padded inputs")
register_preset("mi-di", MIFGSM, transform=DI, own_transform=True, randomized=True,
                summary="M-DI²-FGSM (Xie et al. 2019): MI-FGSM with DI's input diversity")
