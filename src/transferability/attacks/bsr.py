"""BSR, block shuffle and rotation (Wang et al., "Boosting Adversarial Transferability by
Block Shuffle and Rotation", CVPR 2024): an input transform of copies whose blocks are
shuffled and slightly rotated.

``MIFGSM(model, eps, input_transform=BSR())`` is the paper's attack (the registry's
``"bsr"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validation import check_int, check_positive
from ._blocks import random_lengths, uniform
from .di import DI
from .mifgsm import MIFGSM
from .registry import register_preset

__all__ = ["BSR"]


def _rotate(block: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate about the centre by ``degrees`` (bilinear, zero fill), differentiably."""
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                         device=block.device, dtype=block.dtype).expand(len(block), 2, 3)
    grid = F.affine_grid(theta, list(block.shape), align_corners=False)
    return F.grid_sample(block, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


class BSR:
    """``copies`` copies, each split into a random ``blocks × blocks`` grid; the rows are
    shuffled, the blocks of each row are shuffled, and each block is rotated by an angle
    drawn from ``[−max_angle, max_angle]`` degrees.

    Wang et al. (2024), Eq. 4–5; defaults as in the paper: 20 copies, a 2×2 grid, 24°. The
    attack averages the gradient over the copies (20 gradients a step).
    """

    def __init__(self, copies: int = 20, blocks: int = 2, max_angle: float = 24.0):
        self.copies = check_int(copies, "copies", maximum=100)
        self.blocks = check_int(blocks, "blocks", maximum=16)
        self.max_angle = check_positive(max_angle, "max_angle", allow_zero=True)

    def __repr__(self) -> str:
        return (f"BSR(copies={self.copies!r}, blocks={self.blocks!r}, "
                f"max_angle={self.max_angle!r})")

    def _permutation(self, g, device) -> list[int]:
        return torch.randperm(self.blocks, generator=g, device=device).tolist()

    def _copy(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        rows = random_lengths(x.shape[-2], self.blocks, g, x.device)
        cols = random_lengths(x.shape[-1], self.blocks, g, x.device)
        strips = x.split(rows, dim=-2)
        out = []
        for r in self._permutation(g, x.device):
            pieces = strips[r].split(cols, dim=-1)
            row = []
            for c in self._permutation(g, x.device):
                angle = (2 * uniform(g, x.device) - 1) * self.max_angle
                row.append(_rotate(pieces[c], angle))
            out.append(torch.cat(row, dim=-1))
        return torch.cat(out, dim=-2)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.cat([self._copy(x, generator) for _ in range(self.copies)])


register_preset("bsr", MIFGSM, transform=BSR, also=(DI,), randomized=True, grads_per_step=20,
                quick={"copies": 2},
                summary="BSR (Wang et al. 2024): MI-FGSM over block-shuffled, rotated copies")
