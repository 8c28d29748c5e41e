"""Geometry of the threat models: L∞ and L2 balls around an image, per sample.

Every attack takes its steps, projections and random starts from here, so the two norms
are handled in exactly one place. All functions are vectorised over the batch (dimension 0)
and are plain tensor arithmetic (no autograd).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._validation import check_choice

__all__ = ["NORMS", "check_norm", "step_direction", "ascend", "project", "clip", "projector",
           "random_start", "quantize", "check_bound", "LEVELS"]

#: 8-bit images: the values k/255.
LEVELS = 255

NORMS = ("linf", "l2")

# Guards divisions by a zero gradient or perturbation norm.
_TINY = 1e-12


def check_norm(norm: str) -> str:
    """Validate a norm name (``"linf"`` or ``"l2"``)."""
    return check_choice(norm, "norm", NORMS)


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    """Reshape a length-N vector so it broadcasts against an N×C×H×W tensor."""
    return v.view(-1, *([1] * 3))


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(p=2, dim=1)


def step_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction of unit norm: ``sign(g)`` for L∞, ``g/‖g‖₂`` for L2.

    These are the maximisers of ⟨g, d⟩ over the unit ball of each norm (Goodfellow et al.
    2015, Eq. 3, for L∞; Madry et al. 2018 for L2). A zero gradient gives a zero step.
    """
    if norm == "linf":
        return grad.sign()
    return grad / _per_sample(_l2(grad).clamp_min(_TINY))


def ascend(x_adv: torch.Tensor, grad: torch.Tensor, alpha: float, norm: str) -> torch.Tensor:
    """``x_adv + α·step_direction(grad)``; for L∞ one fused kernel (``α·sign`` is exact, so
    the sum is the same as the two-kernel form, bit for bit)."""
    if norm == "linf":
        return torch.add(x_adv, grad.sign(), alpha=alpha)
    return x_adv + alpha * step_direction(grad, norm)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Euclidean projection of a perturbation onto the ε-ball of ``norm`` (per sample)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    factor = (eps / _l2(delta).clamp_min(_TINY)).clamp(max=1.0)
    return delta * _per_sample(factor)


def random_start(x: torch.Tensor, eps: float, norm: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` plus a perturbation drawn uniformly from the ε-ball, clipped to [0, 1].

    Madry et al. (2018) start PGD at a uniformly random point of the ball. For L2 the
    point is a Gaussian direction scaled by radius ε·u^(1/d), which is uniform in the ball.
    """
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        delta = (2 * u - 1) * eps
    else:
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / _per_sample(_l2(direction).clamp_min(_TINY))
        u = torch.rand(len(x), generator=generator, device=x.device, dtype=x.dtype)
        delta = direction * _per_sample(eps * u.pow(1.0 / x[0].numel()))
    return (x + delta).clamp(0, 1)


def clip(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Bring ``x_adv`` back into the ε-ball around ``x`` and into the image range [0, 1].

    Written as ``x + project(x_adv − x)`` then a clamp, the same arithmetic as the usual
    scripts, so attacks without randomness reproduce them bit for bit. Clamping to [0, 1]
    only shrinks each coordinate of the perturbation, so the result stays in the ball.
    """
    if norm == "linf":  # in place on the fresh difference: no temporaries
        return (x_adv - x).clamp_(-eps, eps).add_(x).clamp_(0, 1)
    return (x + project(x_adv - x, eps, norm)).clamp(0, 1)


def projector(x: torch.Tensor, eps: float, norm: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v ↦ v`` brought into the ε-ball around ``x`` and into [0, 1], for many ``v``.

    For L∞ the bounds ``max(x − ε, 0)`` and ``min(x + ε, 1)`` are computed once and each
    projection is one clamp: the values of ``min(max(v, x − ε), x + ε)`` clamped to [0, 1]
    (Croce & Hein's form), which may differ from :func:`clip`'s in the last bit. For L2,
    :func:`clip`.
    """
    if norm != "linf":
        return lambda v: clip(x, v, eps, norm)
    low, high = (x - eps).clamp_(min=0), (x + eps).clamp_(max=1)
    return lambda v: torch.clamp(v, low, high)


def quantize(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str,
             levels: int = LEVELS) -> torch.Tensor:
    """``x_adv`` rounded to the grid ``k/levels`` (8-bit images), kept in the ε-ball.

    Rounding to the nearest level can leave the ball by up to half a level; the samples
    (L2) or coordinates (L∞) it pushes out are rounded towards ``x`` instead, which stays
    in the ball when ``x`` is on the grid (quantise the clean images first), so what a
    victim sees is what a saved PNG holds. :func:`check_bound` verifies the result.
    """
    q = torch.round(x_adv * levels) / levels
    toward = torch.where(x_adv >= x, torch.floor(x_adv * levels),
                         torch.ceil(x_adv * levels)) / levels
    if norm == "linf":
        outside = (q - x).abs() > eps
    else:
        outside = _per_sample(_l2(q - x) > eps).expand_as(q)
    return torch.where(outside, toward, q).clamp(0, 1)


def check_bound(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str,
                name: str = "x_adv") -> None:
    """Refuse a batch with a perturbation larger than ε (beyond float rounding)."""
    size = ((x_adv - x).flatten(1).abs().amax(dim=1) if norm == "linf"
            else _l2(x_adv - x))
    worst = float(size.max()) if len(size) else 0.0
    if worst > eps * (1 + 1e-6) + 1e-7:
        raise ValueError(f"{name}: a perturbation of {norm} size {worst:.6g} exceeds "
                         f"eps={eps:.6g} after quantisation; put the clean images on the "
                         "8-bit grid first")
