"""Square Attack (Andriushchenko et al., ECCV 2020): a score-based black-box attack by
random square-shaped updates, L∞ and L2."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .._validation import check_fraction, check_int
from .base import Attack, margin
from .registry import register_attack

__all__ = ["Square", "square_size", "square_fraction", "pseudo_gaussian"]

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


def _rectangles(rows: int, cols: int) -> torch.Tensor:
    """Concentric rectangles weighted 1/(k+1)² around the centre, unit L2 norm."""
    out = torch.zeros(rows, cols, dtype=torch.float64)
    r, c = rows // 2, cols // 2
    for k in range(max(r, c) + 1):
        out[max(r - k, 0):min(r + k + 1, rows), max(c - k, 0):min(c + k + 1, cols)] += \
            1 / (k + 1) ** 2
    return out / out.norm()


@functools.lru_cache(maxsize=64)
def pseudo_gaussian(s: int) -> torch.Tensor:
    """The s×s update of L2 Square: rectangles of opposite sign on the two halves, unit L2
    norm (Andriushchenko et al. 2020, Sec. 3.2, the "meta pseudo-Gaussian" η)."""
    out = torch.cat([_rectangles(s // 2, s), -_rectangles(s - s // 2, s)])
    return out / out.norm()


@register_attack("square", takes_steps=False, randomized=True, grads_per_step=0,
                 quick={"queries": 3})
class Square(Attack):
    """Square Attack (Andriushchenko et al. 2020), untargeted, L∞ or L2.

    L∞ (Algorithm 2): starts from vertical stripes of ±ε, then each iteration proposes, per
    sample, a square window of side :func:`square_size` at a random place with a random ±ε
    per channel. L2 (Algorithm 3): starts from a grid of :func:`pseudo_gaussian` tiles
    scaled to norm ε; each iteration moves the perturbation's mass from a second random
    window into the first and adds a :func:`pseudo_gaussian` update there, rescaled so the
    perturbation keeps norm ε (windows of odd side ≥ 3, one place per iteration for the
    batch, as in the authors' code). A proposal is kept when the margin loss
    ``z_y − max_{j≠y} z_j`` drops. It uses only the model's outputs (one query per sample
    and iteration) and stops on a sample once it is misclassified.

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
        if self.targeted or self.loss != "ce" or self.input_transform is not None:
            raise ValueError("targeted: Square is untargeted, with its own margin loss and no "
                             "input transform")
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
            run = self._run if self.norm == "linf" else self._run_l2
            adv, m = run(x[idx], y[idx], generator)
            x_adv[idx], left[idx] = adv, m > 0
        return x_adv

    def _rand(self, shape, generator, like):
        return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)

    def _signs(self, shape, generator, like):
        eps = torch.tensor(self.eps, dtype=like.dtype, device=like.device)  # not float32's 0.1
        return torch.where(self._rand(shape, generator, like) < 0.5, -eps, eps)

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

    def _unit(self, delta):
        """``delta`` scaled to L2 norm ε per sample."""
        norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        return delta * (self.eps / norm).view(-1, 1, 1, 1)

    def _eta(self, s, generator, like):
        eta = pseudo_gaussian(s).to(like.device, like.dtype)
        return eta.T if float(self._rand((), generator, like)) > 0.5 else eta

    def _run_l2(self, x, y, generator):
        n, c, h, w = x.shape
        tile = max(min(h, w) // 5, 1)
        start = (min(h, w) - 5 * tile) // 2
        delta = torch.zeros_like(x)
        for top in range(start, h - tile + 1, tile):
            for left in range(start, w - tile + 1, tile):
                delta[:, :, top:top + tile, left:left + tile] += \
                    self._eta(tile, generator, x) * self._signs((n, c, 1, 1), generator, x)
        best = (x + self._unit(delta)).clamp(0, 1)
        m = self._margin(best, y)
        for i in range(self.queries - 1):
            idx = (m > 0).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            xa = x[idx]
            delta = best[idx] - xa
            s = max(round(math.sqrt(square_fraction(self.p_init, i) * h * w)), 3)
            s = min(s + (s % 2 == 0), min(h, w) - 1)
            (t1, l1, t2, l2) = ((self._rand(4, generator, x) * (min(h, w) - s + 1)).long()
                                .tolist())
            one = (slice(None), slice(None), slice(t1, t1 + s), slice(l1, l1 + s))
            two = (slice(None), slice(None), slice(t2, t2 + s), slice(l2, l2 + s))
            window = delta[one]
            mask = torch.zeros(1, 1, h, w, dtype=torch.bool, device=x.device)
            mask[one] = mask[two] = True
            in_window = window.flatten(2).norm(dim=2)[:, :, None, None]
            in_both = (delta * mask).flatten(2).norm(dim=2)[:, :, None, None]
            total = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            update = (self._eta(s, generator, x) * self._signs((len(idx), c, 1, 1), generator, x)
                      + window / in_window.clamp_min(1e-12))
            scale = ((self.eps ** 2 - total ** 2).clamp_min(0) / c + in_both ** 2).sqrt()
            update = update * scale / update.flatten(2).norm(dim=2)[:, :, None, None]
            proposal = delta.clone()
            proposal[two] = 0
            proposal[one] = update
            proposal = (xa + self._unit(proposal)).clamp(0, 1)
            m_new = self._margin(proposal, y[idx])
            better = m_new < m[idx]
            best[idx[better]], m[idx[better]] = proposal[better], m_new[better]
        return best, m
