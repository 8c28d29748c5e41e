"""FAB-T, the targeted fast adaptive boundary attack (Croce & Hein, ICML 2020): minimal-norm
adversarial examples by projections onto the linearised decision boundary."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive, check_unit_interval
from .apgdt import top_targets
from .base import Attack
from .registry import register_attack

__all__ = ["FABT", "project_onto_hyperplane"]

_TINY = 1e-12


def project_onto_hyperplane(p: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                            norm: str) -> torch.Tensor:
    """Per row, the step ``d`` of least L∞ or L2 norm with ``w·(p + d) = b`` and
    ``p + d ∈ [0, 1]`` (the box-constrained projection of FAB, Croce & Hein 2020, Eq. 5).

    Orient ``w`` so that ``w·d`` must grow by ``r = |b − w·p|``. Each coordinate moves
    towards the side of ``w_i`` by ``min(s·c_i, u_i)``, with ``u_i`` the room left in the box
    and ``c_i = 1`` (L∞: all coordinates move equally) or ``|w_i|`` (L2: the Lagrange
    solution). ``g(s) = Σ|w_i|·min(s·c_i, u_i)`` is piecewise linear and increasing, so the
    smallest ``s`` with ``g(s) = r`` follows from the sorted breakpoints ``u_i / c_i``. When
    the box cannot reach the hyperplane, every coordinate moves as far as it can.
    """
    r = b - (w * p).sum(1)
    w = w * torch.where(r < 0, -1.0, 1.0).to(w.dtype)[:, None]
    r = r.abs()
    a = w.abs()
    room = torch.where(w > 0, 1 - p, p)
    c = torch.ones_like(a) if norm == "linf" else a
    breaks = torch.where(c > 0, room / c.clamp_min(_TINY), torch.full_like(a, float("inf")))
    order = breaks.argsort(dim=1)
    breaks, a_s, c_s, room_s = (t.gather(1, order) for t in (breaks, a, c, room))
    reached = torch.cumsum(a_s * room_s, 1)  # Σ_{j≤k} |w_j|·u_j
    slope = (a_s * c_s).sum(1, keepdim=True) - torch.cumsum(a_s * c_s, 1)  # Σ_{j>k} |w_j|·c_j
    g = reached + torch.where(slope > 0, breaks * slope, torch.zeros_like(slope))
    k = (g < r[:, None]).sum(1, keepdim=True)  # the segment holding the solution
    before = torch.cat([torch.zeros_like(reached[:, :1]), reached], 1).gather(1, k)
    rate = torch.cat([(a_s * c_s).sum(1, keepdim=True), slope], 1).gather(1, k)
    s = (r[:, None] - before) / rate.clamp_min(_TINY)
    feasible = k < p.shape[1]
    step = torch.where(feasible, torch.minimum(s * c, room), room)
    return torch.sign(w) * step


@register_attack("fab-t", randomized=True, grads_per_step=None)
class FABT(Attack):
    """FAB-T (Croce & Hein, ICML 2020, Algorithm 1, targeted), L∞ or L2.

    For each of the ``n_targets`` highest-ranked wrong classes, on the samples still
    correctly classified: linearise ``f_t − f_y`` at the iterate ``x_k`` and project both
    ``x_k`` and the original ``x`` onto its zero set inside the box
    (:func:`project_onto_hyperplane`), giving steps ``d_k`` and ``d_0``; then
    ``x_{k+1} = (1 − α)(x_k + η·d_k) + α(x + η·d_0)`` clipped to [0, 1], with
    ``α = min(‖d_k‖ / (‖d_k‖ + ‖d_0‖), α_max)``. Once ``x_{k+1}`` is misclassified (as
    in the authors' code, any wrong class counts) it is kept if closer than the best so far
    and pulled back: ``x + β(x_{k+1} − x)``. Restarts
    after the first start from a random point at half the budget.

    FAB minimises the norm; a sample returns its closest adversarial point when that lies
    within ``eps`` and the clean input otherwise, so a success always respects the ball.

    Args:
        steps: iterations per target and restart.
        n_targets: target classes tried (the top-ranked wrong classes of the clean input).
        restarts: starts per target.
        eta, beta, alpha_max: the authors' 1.05, 0.9 and 0.1.
        **options: as in :class:`~transferability.attacks.base.Attack` (``norm``, ``seed``).
    """

    def __init__(self, model: nn.Module, eps: float, steps: int = 100, *, n_targets: int = 9,
                 restarts: int = 1, eta: float = 1.05, beta: float = 0.9,
                 alpha_max: float = 0.1, **options):
        super().__init__(model, eps, **options)
        if self.targeted or self.loss != "ce" or self.input_transform is not None:
            raise ValueError("targeted: FABT chooses its targets itself; call it with the true "
                             "labels, without loss or input_transform options")
        self.steps = check_int(steps, "steps")
        self.n_targets = check_int(n_targets, "n_targets", maximum=1000)
        self.restarts = check_int(restarts, "restarts", maximum=1000)
        self.eta = check_positive(eta, "eta")
        self.beta = check_unit_interval(beta, "beta")
        self.alpha_max = check_unit_interval(alpha_max, "alpha_max")

    def _norm(self, d: torch.Tensor) -> torch.Tensor:
        flat = d.flatten(1)
        return flat.abs().amax(1) if self.norm == "linf" else flat.norm(dim=1)

    def perturb(self, x, y, generator):
        with torch.no_grad():
            logits = self.model(x)
        n_targets = min(self.n_targets, logits.shape[1] - 1)
        targets = top_targets(logits, y, n_targets)
        x_adv, done = x.clone(), logits.argmax(1) != y
        for t in range(n_targets):
            for restart in range(self.restarts):
                idx = (~done).nonzero().squeeze(1)
                if len(idx) == 0:
                    return x_adv
                best, dist = self._run(x[idx], y[idx], targets[idx, t], restart > 0, generator)
                hit = dist <= self.eps
                x_adv[idx[hit]], done[idx[hit]] = best[hit], True
        return x_adv

    def _boundary(self, x_k, y, target):
        """``f_t − f_y`` at ``x_k`` and its input gradient."""
        x_in = x_k.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(x_in)
            diff = (logits.gather(1, target[:, None]) - logits.gather(1, y[:, None])).squeeze(1)
            (grad,) = torch.autograd.grad(diff.sum(), x_in)
        return diff.detach(), grad

    def _run(self, x, y, target, random_start, generator):
        """One FAB-T run towards ``target``: the closest misclassified point and its distance."""
        n = len(x)
        x_k = x.clone()
        if random_start:
            t = 2 * torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 1
            x_k = (x + 0.5 * self.eps * t / self._norm(t).clamp_min(_TINY).view(-1, 1, 1, 1)
                   ).clamp(0, 1)
        best = x.clone()
        dist = torch.full((n,), float("inf"), device=x.device, dtype=x.dtype)
        flat_x = x.flatten(1)
        for _ in range(self.steps):
            diff, grad = self._boundary(x_k, y, target)
            w = grad.flatten(1)
            b = (w * x_k.flatten(1)).sum(1) - diff  # the hyperplane w·z = b
            steps = project_onto_hyperplane(torch.cat([x_k.flatten(1), flat_x]),
                                            torch.cat([w, w]), torch.cat([b, b]), self.norm)
            d_k, d_0 = steps[:n].view_as(x), steps[n:].view_as(x)
            a_k, a_0 = (self._norm(d).clamp_min(1e-8) for d in (d_k, d_0))
            alpha = (a_k / (a_k + a_0)).clamp(0, self.alpha_max).view(-1, 1, 1, 1)
            x_k = ((1 - alpha) * (x_k + self.eta * d_k)
                   + alpha * (x + self.eta * d_0)).clamp(0, 1)
            with torch.no_grad():
                hit = self.model(x_k).argmax(1) != y
            if hit.any():
                gap = self._norm(x_k - x)
                closer = hit & (gap < dist)
                best[closer], dist[closer] = x_k[closer], gap[closer]
                x_k[hit] = x[hit] + self.beta * (x_k[hit] - x[hit])
        return best, dist
