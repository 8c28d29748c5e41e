"""Robust accuracy: the per-sample worst case of several attacks.

A single cross-entropy attack understates the risk when gradients vanish (a saturated
softmax in float32, the masking of :class:`GradientMaskingWarning`), so robust accuracy here
is the worst case over L∞ PGD with cross-entropy and PGD with the Carlini–Wagner margin
(Madry et al. 2018; Carlini & Wagner 2017), each from a random start, with ``restarts``
draws: a sample counts as robust only if the model classifies it correctly on the clean
input and after every attack. It is never above any single attack's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .._results import Result
from .._validation import check_images, check_int, check_labels_tensor, check_positive, check_seed
from ..features import predict
from ..utils import batches, progress
from .registry import create_attack

__all__ = ["RobustAccuracy", "robust_accuracy"]


@dataclass(frozen=True)
class RobustAccuracy(Result):
    """Clean and robust accuracy with their counts, and each attack's own accuracy."""

    clean_accuracy: float
    robust_accuracy: float
    n: int
    clean_correct: int
    robust_correct: int
    eps: float
    per_attack: dict = field(default_factory=dict)  # name -> accuracy under that attack alone


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    steps: int = 20, restarts: int = 1, norm: str = "linf",
                    batch_size: int = 256, seed: int = 0,
                    show_progress: bool | None = None) -> RobustAccuracy:
    """Worst case over PGD-``steps`` with CE and with margin loss, ``restarts`` random
    starts each, at radius ``eps`` (see the module docstring)."""
    x = check_images(x, "x")
    y = check_labels_tensor(y, "y", n=len(x))
    eps = check_positive(eps, "eps")
    restarts = check_int(restarts, "restarts", maximum=100)
    batch_size = check_int(batch_size, "batch_size")
    seed = check_seed(seed)
    if len(x) == 0:
        raise ValueError("x: is an empty batch")
    logits = predict(model, x, batch_size=batch_size)
    correct = (logits.argmax(1).cpu() == y.cpu())
    robust = correct.clone()
    per_attack = {}
    runs = [(loss, r) for loss in ("ce", "margin") for r in range(restarts)]
    for loss, r in progress(runs, desc="robust accuracy", enabled=show_progress):
        attack = create_attack("pgd", model, eps=eps, steps=check_int(steps, "steps"),
                               norm=norm, loss=loss, seed=seed + r)
        still = torch.cat([predict(model, attack(xb, yb), batch_size=batch_size).argmax(1).cpu()
                           == yb.cpu() for xb, yb in batches(x, y, batch_size=batch_size)])
        name = f"pgd{steps}-{loss}" + (f"-start{r}" if restarts > 1 else "")
        per_attack[name] = float(still.double().mean())
        robust &= still
    return RobustAccuracy(clean_accuracy=float(correct.double().mean()),
                          robust_accuracy=float(robust.double().mean()), n=len(x),
                          clean_correct=int(correct.sum()), robust_correct=int(robust.sum()),
                          eps=eps, per_attack=per_attack)
