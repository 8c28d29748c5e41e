"""AutoAttack's checks for evaluations that fool themselves (Croce & Hein 2020; the flags of
their code): each warns with an :class:`EvaluationCheckWarning` that names the check."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EvaluationCheckWarning", "check_softmax_output", "check_zero_gradients",
           "check_randomness", "check_black_box"]

#: a black-box attack "beats" the white-box ones when it lowers robust accuracy by more
#: than this after them (the authors' 0.002)
BLACK_BOX_TOLERANCE = 0.002


class EvaluationCheckWarning(UserWarning):
    """A robustness evaluation is probably unreliable; the message names the check."""


def _warn(check: str, message: str) -> None:
    warnings.warn(f"AutoAttack check '{check}': {message}", EvaluationCheckWarning, stacklevel=3)


def check_softmax_output(logits: torch.Tensor) -> bool:
    """Warn when the model's outputs are probabilities (non-negative rows summing to 1):
    gradients through a softmax vanish and the attacks are misled."""
    rows = logits.sum(dim=1)
    hit = bool((logits >= 0).all() and torch.allclose(rows, torch.ones_like(rows), atol=1e-4))
    if hit:
        _warn("softmax output", "the model outputs probabilities instead of logits; remove "
              "the final softmax, or the attacks' gradients vanish")
    return hit


def check_zero_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Warn when the cross-entropy input gradient is exactly zero on some points (masked or
    saturated gradients); returns how many."""
    x_in = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_in), y, reduction="sum"), x_in)
    zero = int((grad.flatten(1).abs().sum(1) == 0).sum())
    if zero:
        _warn("zero gradients", f"the input gradient is zero on {zero} of {len(x)} points; "
              "gradient-based attacks cannot move them, so their robust accuracy may be "
              "overestimated")
    return zero


def check_randomness(model: nn.Module, x: torch.Tensor) -> bool:
    """Warn when two identical calls of the model (eval mode) give different outputs: a
    randomised defence, to evaluate with ``version="rand"`` (expectation over
    transformation)."""
    with torch.no_grad():
        first, second = model(x), model(x)
    hit = not torch.equal(first, second)
    if hit:
        _warn("randomness", "the model's outputs change between two identical calls; use "
              "version='rand' (expectation over transformation) for a randomised defence")
    return hit


def check_black_box(accuracy: dict[str, float], black_box: str = "square") -> bool:
    """Warn when the black-box attack, run after the white-box ones, still lowered robust
    accuracy by more than :data:`BLACK_BOX_TOLERANCE`: the gradients are probably masked.
    ``accuracy`` maps each attack, in the order run, to the robust accuracy after it."""
    names = list(accuracy)
    if black_box not in names or names.index(black_box) == 0:
        return False
    before = accuracy[names[names.index(black_box) - 1]]
    hit = accuracy[black_box] < before - BLACK_BOX_TOLERANCE
    if hit:
        _warn("black box beats white box", f"{black_box} lowered robust accuracy from "
              f"{before:.4f} to {accuracy[black_box]:.4f} after the white-box attacks had "
              "failed; the gradients are probably masked")
    return hit
