"""SIA, the structure invariant attack (Wang et al., "Structure Invariant Transformation
for better Adversarial Transferability", ICCV 2023): an input transform of copies whose
blocks are transformed independently.

``MIFGSM(model, eps, input_transform=SIA())`` is the paper's attack (the registry's
``"sia"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validation import check_int
from ._blocks import randint, random_lengths, uniform
from .di import DI
from .mifgsm import MIFGSM
from .registry import register_preset

__all__ = ["SIA"]


def _shift(b, g, dim):
    return b.roll(randint(b.shape[dim], g, b.device), dims=dim)


def _resize(b, g):
    h, w = b.shape[-2:]
    small = F.interpolate(b, size=(max(1, int(h * 0.8)), max(1, int(w * 0.8))),
                          mode="bilinear", align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def _dropout(b, g):
    keep = torch.rand(b.shape, generator=g, device=b.device, dtype=b.dtype) >= 0.1
    return b * keep


def _noise(b, g):
    u = torch.rand(b.shape, generator=g, device=b.device, dtype=b.dtype)
    return b + (2 * u - 1) * (16 / 255)


#: The block transforms (Wang et al. 2023, Sec. 3.3): shifts, flips, rotation by 180°,
#: scaling, additive noise, resizing and pixel dropout. The DCT low-pass of the paper's
#: set is left out.
OPS = (
    lambda b, g: _shift(b, g, -2),                 # vertical shift
    lambda b, g: _shift(b, g, -1),                 # horizontal shift
    lambda b, g: b.flip(-2),                       # vertical flip
    lambda b, g: b.flip(-1),                       # horizontal flip
    lambda b, g: b.flip(-2, -1),                   # rotation by 180°
    lambda b, g: b * uniform(g, b.device),         # scale
    _noise,
    _resize,
    _dropout,
)


class SIA:
    """``copies`` copies, each split into a random ``blocks × blocks`` grid whose blocks
    each get one transform drawn from :data:`OPS`.

    Wang et al. (2023), Eq. 6 and Alg. 1; defaults as in the paper: 20 copies, a 3×3 grid.
    The attack averages the gradient over the copies (20 gradients a step).
    """

    def __init__(self, copies: int = 20, blocks: int = 3):
        self.copies = check_int(copies, "copies", maximum=100)
        self.blocks = check_int(blocks, "blocks", maximum=16)

    def __repr__(self) -> str:
        return f"SIA(copies={self.copies!r}, blocks={self.blocks!r})"

    def _copy(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        rows = random_lengths(x.shape[-2], self.blocks, g, x.device)
        cols = random_lengths(x.shape[-1], self.blocks, g, x.device)
        out = []
        for strip in x.split(rows, dim=-2):
            out.append(torch.cat([OPS[randint(len(OPS), g, x.device)](block, g)
                                  for block in strip.split(cols, dim=-1)], dim=-1))
        return torch.cat(out, dim=-2)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.cat([self._copy(x, generator) for _ in range(self.copies)])


register_preset("sia", MIFGSM, transform=SIA, also=(DI,), randomized=True, grads_per_step=20,
                quick={"copies": 2},
                summary="SIA (Wang et al. 2023): MI-FGSM over block-wise transformed copies")
