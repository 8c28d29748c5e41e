"""Batched input gradients of a per-sample objective, shared by alignment and attribution."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._validation import model_device
from ..features import check_finite_outputs, model_inputs, run_model
from ..utils import batches, evaluating, frozen

_TINY = 1e-12  # guards divisions by a zero gradient norm


def input_gradients(model: nn.Module, objective: Callable[..., torch.Tensor], x: torch.Tensor,
                    *per_sample: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """∇ₓ of ``objective(model(x_b), *per_sample_b)`` for each batch, summed over the batch.

    A summed objective keeps every sample's gradient its own. The model runs in eval mode
    with frozen parameters (both restored), so no ``.grad`` reaches a parameter. The
    gradients come back on the CPU in float64, in input order.
    """
    device = model_device(model)
    grads = []
    with evaluating(model), frozen(model), torch.enable_grad():
        for xb, *extra in batches(x, *per_sample, batch_size=batch_size):
            xb = model_inputs(model, xb).requires_grad_(True)
            extra = [t.to(device) for t in extra]
            out = check_finite_outputs(run_model(model, xb), "model")
            (g,) = torch.autograd.grad(objective(out, *extra), xb)
            grads.append(g.detach().cpu().double())
    return torch.cat(grads)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row cosine of two N×… tensors, flattened; 0 where either row is zero."""
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(_TINY)
