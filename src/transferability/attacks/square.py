"""Square Attack (Andriushchenko et al., ECCV 2020): a score-based black-box attack by
random square-shaped updates, L∞."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_fraction, check_int
from .base import Attack, margin

__all__ = ["Square", "square_size", "square_fraction"]

#: (iteration, divisor) steps of the schedule of ``p``: after iteration i, p = p_init / d
_SCHEDULE = ((10, 2), (50, 4), (200, 8), (500, 16), (1000, 32), (2000, 64), (4000, 128),
             (6000, 256), (8000, 512))


def square_fraction(p_init: float, iteration: int) -> float:
    """The share ``p`` of the image a square covers at ``iteration`` (the authors' schedule
    for 10,000 queries: halved after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and
    8000)."""
    divisor = 1
    for after, d in _SCHEDULE:
        if iteration > after:
            divisor = d
    return p_init / divisor


def square_size(p: float, height: int) -> int:
    """Side ``s = round(√(p·h·w))`` of a square covering share ``p`` of an h×h image,
    between 1 and ``h − 1`` (Andriushchenko et al. 2020, Alg. 2)."""
    return min(max(round(math.sqrt(p * height * height)), 1), height - 1)


class Square(Attack):
    """Square Attack, L∞ (Andriushchenko et al. 2020, Algorithm 2), untargeted.

    Starts from vertical stripes of ±ε, then each iteration proposes, per sample, a square
    window of side :func:`square_size` at a random place with a random ±ε per channel, and
    keeps it when the margin loss ``z_y − max_{j≠y} z_j`` drops. It uses only the model's
    outputs (one query per sample and iteration) and stops on a sample once it is
    misclassified.

    Args:
        queries: queries per sample and restart (the first is the stripes; 5,000 in
            AutoAttack).
        p_init: the initial share of the image a square covers (0.8 in AutoAttack).
        restarts: restarts on the samples not yet misclassified.
        **options: as in :class:`~transferability.attacks.base.Attack` (``seed``,
            ``use_predictions``).
    """

    def __init__(self, model: nn.Module, eps: float, queries: int = 5000, *, p_init: float = 0.8,
                 restarts: int = 1, **options):
        super().__init__(model, eps, **options)
        if self.norm != "linf" or self.targeted or self.loss != "ce" \
                or self.input_transform is not None:
            raise ValueError("norm: Square is implemented for norm='linf', untargeted, without "
                             "input transforms")
        self.queries = check_int(queries, "queries", maximum=10**7)
        self.p_init = check_fraction(p_init, "p_init")
        self.restarts = check_int(restarts, "restarts", maximum=1000)

    def _margin(self, x, y):
        with torch.no_grad():
            return margin(self.model(x), y)

    def perturb(self, x, y, generator):
        x_adv = x.clone()
        left = self._margin(x, y) > 0
        for _ in range(self.restarts):
            idx = left.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            adv, m = self._run(x[idx], y[idx], generator)
            x_adv[idx], left[idx] = adv, m > 0
        return x_adv

    def _rand(self, shape, generator, like):
        return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)

    def _signs(self, shape, generator, like):
        return torch.where(self._rand(shape, generator, like) < 0.5, -self.eps, self.eps)

    def _run(self, x, y, generator):
        n, c, h, w = x.shape
        best = (x + self._signs((n, c, 1, w), generator, x)).clamp(0, 1)
        m = self._margin(best, y)
        rows = torch.arange(h, device=x.device)[None, :, None]
        cols = torch.arange(w, device=x.device)[None, None, :]
        for i in range(self.queries - 1):
            idx = (m > 0).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            xa, current = x[idx], best[idx]
            s = square_size(square_fraction(self.p_init, i), min(h, w))
            top = (self._rand(len(idx), generator, x) * (h - s + 1)).long()[:, None, None]
            left = (self._rand(len(idx), generator, x) * (w - s + 1)).long()[:, None, None]
            window = ((rows >= top) & (rows < top + s) & (cols >= left) & (cols < left + s))
            window = window[:, None]
            signs = self._signs((len(idx), c, 1, 1), generator, x)
            # a channel whose window would not change at all flips its sign (the authors
            # redraw until something changes)
            same = ((xa + signs).clamp(0, 1) - current).abs().masked_fill(~window, 0)
            same = same.flatten(2).amax(2)[:, :, None, None] < 1e-7
            signs = torch.where(same, -signs, signs)
            proposal = torch.where(window, (xa + signs).clamp(0, 1), current)
            m_new = self._margin(proposal, y[idx])
            better = m_new < m[idx]
            best[idx[better]], m[idx[better]] = proposal[better], m_new[better]
        return best, m
