"""How visible a perturbation is: mean L2 and L∞ distances and SSIM, per image.

SSIM follows Wang et al., "Image Quality Assessment: From Error Visibility to Structural
Similarity" (IEEE TIP 2004), Eq. 13 with their constants: an 11×11 Gaussian window with
σ = 1.5 (smaller for images under 11 pixels), ``C1 = (0.01·L)²``, ``C2 = (0.03·L)²`` for the
range ``L = 1``, "valid" windows only, averaged over windows and channels. No learned metric.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import check_images

__all__ = ["ssim", "stealth"]

_C1, _C2, _SIGMA = 0.01 ** 2, 0.03 ** 2, 1.5


def _window(size: int, channels: int, device, dtype) -> torch.Tensor:
    t = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * _SIGMA ** 2))
    w = torch.outer(g, g)
    return (w / w.sum()).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of two batches N×C×H×W in [0, 1] (float64, shape N)."""
    a = check_images(a, "a").double()
    b = check_images(b, "b").double().to(a.device)
    if a.shape != b.shape:
        raise ValueError(f"b: expected the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    size = min(11, *a.shape[-2:])
    w = _window(size, a.shape[1], a.device, a.dtype)

    def blur(t):
        return F.conv2d(t, w, groups=a.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
         / ((mu_a ** 2 + mu_b ** 2 + _C1) * (var_a + var_b + _C2)))
    return s.flatten(1).mean(dim=1)


def stealth(x: torch.Tensor, x_adv: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``l2``, ``linf`` (distances in the [0, 1] pixel scale) and ``ssim``."""
    delta = (x_adv.double() - x.double().to(x_adv.device)).flatten(1)
    return {"l2": delta.norm(dim=1).cpu(), "linf": delta.abs().amax(dim=1).cpu(),
            "ssim": ssim(x, x_adv).cpu()}
