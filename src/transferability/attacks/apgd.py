"""APGD, auto-PGD (Croce & Hein, ICML 2020): PGD with momentum and a step size that halves
at checkpoints when progress stalls, with the cross-entropy or the DLR loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_int, check_unit_interval
from . import norms
from .base import Attack, margin
from .registry import register_attack, register_preset

__all__ = ["APGD", "apgd", "dlr", "checkpoints"]

# Guards the DLR denominator when the top logits tie (the authors' constant).
_DLR_TINY = 1e-12


def dlr(logits: torch.Tensor, labels: torch.Tensor,
        targets: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample difference-of-logits-ratio loss (Croce & Hein 2020, Eq. 6 and 7).

    Untargeted: ``−(z_y − max_{j≠y} z_j) / (z_π1 − z_π3)``; targeted towards ``t``:
    ``−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)``, with ``z_π1 ≥ z_π2 ≥ …`` the sorted
    logits. It is invariant to shifting and scaling the logits, so a saturated softmax
    cannot hide the gradient. Needs 3 classes (4 when targeted).
    """
    need = 3 if targets is None else 4
    if logits.shape[1] < need:
        raise ValueError(f"model: the {'targeted ' if targets is not None else ''}DLR loss needs "
                         f"at least {need} classes, the model has {logits.shape[1]}")
    top = logits.topk(need, dim=1).values
    if targets is None:
        return -margin(logits, labels) / (top[:, 0] - top[:, 2] + _DLR_TINY)
    pick = logits.gather
    gap = pick(1, labels[:, None]).squeeze(1) - pick(1, targets[:, None]).squeeze(1)
    return -gap / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + _DLR_TINY)


def _image(mask: torch.Tensor) -> torch.Tensor:
    """A per-sample mask shaped to broadcast against N×C×H×W images."""
    return mask.view(-1, 1, 1, 1)


def checkpoints(steps: int) -> list[int]:
    """The iterations after which APGD checks its progress (Croce & Hein 2020, Sec. 3.2).

    ``p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``, as counts of
    iterations: the first check after ``⌊0.22·N⌋`` iterations, then intervals shrinking by
    ``⌊0.03·N⌋`` down to ``⌊0.06·N⌋`` (each at least 1), as in the authors' code.
    """
    interval, shrink, shortest = (max(int(f * steps), 1) for f in (0.22, 0.03, 0.06))
    out, at = [], interval
    while at <= steps:
        out.append(at)
        interval = max(interval - shrink, shortest)
        at += interval
    return out


@register_attack("apgd", randomized=True)
class APGD(Attack):
    """Auto-PGD (Croce & Hein 2020, Algorithm 1), L∞ or L2.

    Starting from a random point of the ball and step size ``η = 2ε``::

        z = Π(x_k + η·d(∇f(x_k)))
        x_{k+1} = Π(x_k + α·(z − x_k) + (1 − α)·(x_k − x_{k−1}))      α = momentum

    (no momentum on the first step). At each of :func:`checkpoints`, a sample's step size
    halves and it restarts from its best point when the loss rose in at most ``rho`` of
    the iterations since the last checkpoint (condition 1), or when neither its step size
    nor its best loss changed since then (condition 2). Each sample returns its last
    misclassified iterate if it had one, else its highest-loss iterate.

    Args:
        steps: iterations (gradient evaluations after the first).
        restarts: random restarts, each on the samples not yet misclassified.
        loss: ``"ce"`` or ``"dlr"`` (:func:`dlr`).
        eot_iter: gradients averaged per step (expectation over transformation, for
            randomised models; 1 for deterministic ones).
        rho, momentum: the authors' 0.75 and 0.75.
        **options: as in :class:`~transferability.attacks.base.Attack` (``norm``, ``seed``,
            ``use_predictions``).
    """

    losses = ("ce", "dlr")

    def __init__(self, model: nn.Module, eps: float, steps: int = 100, *, restarts: int = 1,
                 loss: str = "ce", eot_iter: int = 1, rho: float = 0.75,
                 momentum: float = 0.75, **options):
        super().__init__(model, eps, loss=loss, **options)
        if self.targeted or self.input_transform is not None:
            raise ValueError("targeted, input_transform: APGD is untargeted without input "
                             "transforms; use APGDT for the targeted version")
        self.steps = check_int(steps, "steps")
        self.restarts = check_int(restarts, "restarts", maximum=1000)
        self.eot_iter = check_int(eot_iter, "eot_iter", maximum=1000)
        self.rho = check_unit_interval(rho, "rho")
        self.momentum = check_unit_interval(momentum, "momentum")

    def perturb(self, x, y, generator):
        return self._restarts(x, y, None, generator)

    def _restarts(self, x, y, targets, generator):
        x_adv, fooled = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.restarts):
            idx = (~fooled).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            adv, hit = self._run(x[idx], y[idx], None if targets is None else targets[idx],
                                 generator)
            x_adv[idx], fooled[idx] = adv, hit
        return x_adv

    def sample_losses(self, logits, y, targets):
        """Per-sample loss APGD ascends."""
        if targets is not None:
            return dlr(logits, y, targets)
        if self.loss == "dlr":
            return dlr(logits, y)
        return F.cross_entropy(logits, y, reduction="none")

    def _loss_grad(self, x_adv, y, targets):
        """Per-sample losses, logits and the gradient (averaged over ``eot_iter`` passes)."""
        total = grad = None
        for _ in range(self.eot_iter):
            x_in = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = self.model(x_in)
                loss = self.sample_losses(logits, y, targets)
                g = torch.autograd.grad(loss.sum(), x_in)[0]
            grad = g if grad is None else grad + g
            total = loss.detach() if total is None else total + loss.detach()
        if self.eot_iter > 1:  # the mean over the passes (one pass: as it is)
            grad, total = grad / self.eot_iter, total / self.eot_iter
        if self._confident is not None:  # the first gradient of a call on the whole batch
            if len(self._confident) == len(grad):
                self._check_masking(grad)
            self._confident = None
        return total, logits.detach(), grad

    def _run(self, x, y, targets, generator):
        """One APGD run; returns (x_adv, misclassified) per sample."""
        eps, norm = self.eps, self.norm
        project = norms.projector(x, eps, norm)
        x_k = norms.random_start(x, eps, norm, generator) if eps > 0 else x.clone()
        loss, logits, grad = self._loss_grad(x_k, y, targets)
        eta = torch.full((len(x), 1, 1, 1), 2 * eps, device=x.device, dtype=x.dtype)
        best_x, best_grad, best_loss = x_k.clone(), grad.clone(), loss.clone()
        fooled = logits.argmax(1) != y
        adv = torch.where(_image(fooled), x_k, x)
        x_prev = x_k
        checks = set(checkpoints(self.steps))
        increases = torch.zeros(len(x), device=x.device)
        last_check, reduced = 0, torch.zeros(len(x), dtype=torch.bool, device=x.device)
        best_at_check = best_loss.clone()
        for k in range(self.steps):
            a = self.momentum if k > 0 else 1.0
            z = project(torch.addcmul(x_k, eta, norms.step_direction(grad, norm)))
            x_new = project(x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev))
            x_prev, x_k = x_k, x_new
            previous = loss
            loss, logits, grad = self._loss_grad(x_k, y, targets)
            # torch.where, not masked assignment: no host synchronisation in the loop
            wrong = logits.argmax(1) != y
            adv, fooled = torch.where(_image(wrong), x_k, adv), fooled | wrong
            increases += loss > previous
            better = loss > best_loss
            best_loss = torch.where(better, loss, best_loss)
            better = _image(better)
            best_x = torch.where(better, x_k, best_x)
            best_grad = torch.where(better, grad, best_grad)
            if k + 1 in checks:
                stalled = increases <= self.rho * (k + 1 - last_check)
                flat = ~reduced & (best_at_check >= best_loss)
                reduced = stalled | flat
                image = _image(reduced)
                eta = torch.where(image, eta / 2, eta)
                x_k = torch.where(image, best_x, x_k)
                grad = torch.where(image, best_grad, grad)
                increases.zero_()
                last_check, best_at_check = k + 1, best_loss.clone()
        return torch.where(_image(fooled), adv, best_x), fooled


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, eps: float,
         steps: int = 100, **options) -> torch.Tensor:
    """Functional form of :class:`APGD`: ``APGD(model, eps, steps, **options)(x, y)``."""
    return APGD(model, eps, steps, **options)(x, y)


register_preset("apgd-ce", APGD, fixed={"loss": "ce"},
                summary="APGD-CE (Croce & Hein 2020): APGD on the cross-entropy")
register_preset("apgd-dlr", APGD, fixed={"loss": "dlr"},
                summary="APGD-DLR (Croce & Hein 2020): APGD on the difference of logits ratio")
