"""``Preprocess``: a hub model's own evaluation preprocessing, as a module in front of it.

Images stay float N×C×H×W in [0, 1] at the dataset's native size everywhere in the
library; a model made for 224×224 ImageNet inputs carries its resize, centre crop and
normalisation with it, so attacks and features see (and differentiate through) the same
pipeline as the hub's eval transform: resize the shorter side to ``resize`` (``squash``:
both sides), crop the centre ``size``, then ``(x − mean) / std`` (timm's
``transforms_imagenet_eval``, torchvision's ``ImageClassification``). Grayscale inputs are
repeated to the model's channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .classifier import Normalize

__all__ = ["Preprocess"]

_MODES = ("bilinear", "bicubic", "nearest")


class Preprocess(nn.Module):
    """Resize, centre crop, channel repeat and normalisation of a hub's eval transform.

    Args:
        size: ``(height, width)`` of the model's input (the crop).
        resize: the shorter side after resizing (``squash``: ``(height, width)``).
        interpolation: ``bilinear``, ``bicubic`` or ``nearest`` (antialiased when shrinking,
            as torchvision's tensor ``Resize``).
        mean, std: per channel, in [0, 1] units.
        crop_mode: ``center`` (keep the aspect ratio) or ``squash``.
    """

    def __init__(self, size: Sequence[int], resize: int | Sequence[int], interpolation: str,
                 mean: Sequence[float], std: Sequence[float], crop_mode: str = "center"):
        super().__init__()
        if interpolation not in _MODES:
            raise ValueError(f"interpolation: expected one of {_MODES}, got {interpolation!r}")
        if crop_mode not in ("center", "squash"):
            raise ValueError(f"crop_mode: expected 'center' or 'squash', got {crop_mode!r}")
        self.size = (int(size[0]), int(size[1]))
        self.resize = resize if isinstance(resize, int) else (int(resize[0]), int(resize[1]))
        self.interpolation, self.crop_mode = interpolation, crop_mode
        self.normalize = Normalize(mean, std)

    @property
    def in_channels(self) -> int:
        return self.normalize.mean.shape[1]

    def config(self) -> dict:
        """The settings, as plain values (part of a feature cache's key)."""
        return {"size": list(self.size), "resize": self.resize, "interpolation":
                self.interpolation, "crop_mode": self.crop_mode,
                "mean": self.normalize.mean.flatten().tolist(),
                "std": self.normalize.std.flatten().tolist()}

    def _resized_shape(self, h: int, w: int) -> tuple[int, int]:
        if self.crop_mode == "squash" or not isinstance(self.resize, int):
            return (self.resize, self.resize) if isinstance(self.resize, int) else self.resize
        short, long = (w, h) if w <= h else (h, w)  # torchvision's shorter-side rule
        new_long = int(self.resize * long / short)
        return (new_long, self.resize) if w <= h else (self.resize, new_long)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c != self.in_channels:
            if c != 1:
                raise ValueError(f"x: {c}-channel images do not fit a model made for "
                                 f"{self.in_channels} channels")
            x = x.expand(-1, self.in_channels, -1, -1)
        h, w = self._resized_shape(*x.shape[-2:])
        if (h, w) != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=(h, w), mode=self.interpolation,
                              **({} if self.interpolation == "nearest" else
                                 {"align_corners": False, "antialias": True}))
        th, tw = self.size
        if th > h or tw > w:
            raise ValueError(f"x: resized images {h}×{w} are smaller than the crop {th}×{tw}")
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return self.normalize(x[..., top:top + th, left:left + tw])

    def extra_repr(self) -> str:
        return (f"size={self.size}, resize={self.resize}, interpolation={self.interpolation!r}, "
                f"crop_mode={self.crop_mode!r}")
