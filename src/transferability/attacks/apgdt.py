"""APGD-T (Croce & Hein, ICML 2020): APGD on the targeted DLR loss, once per target class
among the model's top-ranked wrong classes."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int
from .apgd import APGD
from .registry import register_attack

__all__ = ["APGDT", "top_targets"]


def top_targets(logits: torch.Tensor, labels: torch.Tensor, n_targets: int) -> torch.Tensor:
    """The ``n_targets`` highest-scoring classes other than the label, best first (N×T)."""
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return others.topk(n_targets, dim=1).indices


@register_attack("apgd-t", randomized=True)
class APGDT(APGD):
    """Targeted APGD: for each of the ``n_targets`` (9) highest-ranked wrong classes of the
    clean input, one APGD run on the targeted DLR loss (:func:`~.apgd.dlr`), on the samples
    not yet misclassified. Called with the **true** labels; success means any
    misclassification, as in AutoAttack. The model needs at least 4 classes; fewer targets
    are used when it has fewer than ``n_targets + 1``.

    Args:
        n_targets: number of target classes tried.
        **options: as in :class:`APGD` (``steps``, ``restarts`` per target, ``norm``, ...).
    """

    losses = ("dlr",)

    def __init__(self, model: nn.Module, eps: float, steps: int = 100, *, n_targets: int = 9,
                 loss: str = "dlr", **options):
        super().__init__(model, eps, steps, loss=loss, **options)
        self.n_targets = check_int(n_targets, "n_targets", maximum=1000)

    def perturb(self, x, y, generator):
        with torch.no_grad():
            logits = self.model(x)
        n_targets = min(self.n_targets, logits.shape[1] - 1)
        targets = top_targets(logits, y, n_targets)
        x_adv = x.clone()
        fooled = logits.argmax(1) != y
        for t in range(n_targets):
            idx = (~fooled).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            adv = self._restarts(x[idx], y[idx], targets[idx, t], generator)
            with torch.no_grad():
                hit = self.model(adv).argmax(1) != y[idx]
            x_adv[idx[hit]], fooled[idx[hit]] = adv[hit], True
        return x_adv
