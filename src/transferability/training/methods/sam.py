"""SAM, sharpness-aware minimisation (Foret et al., ICLR 2021), its adaptive variant ASAM
(Kwon et al., ICML 2021), and the large-radius "flat neighbourhood" surrogate l-SAM
(Gubri et al., 2023).

One step (Foret et al., Eq. 2 and Alg. 1): with g = ∇L(w) on the batch,
ε̂ = ρ·g/‖g‖₂ (ASAM: ε̂ = ρ·T²g/‖T g‖₂ with T = |w| elementwise), then the update uses
∇L(w + ε̂) at w. BatchNorm running statistics are updated by the first forward only; the
second pass (at w + ε̂) normalises with its batch statistics but leaves them unchanged.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..._validation import check_positive
from .base import TrainingMethod, register_training_method

__all__ = ["SAM", "LSAM", "LSAM_RHO"]

#: l-SAM's default radius, chosen by the ρ sweep of ``transferability study surrogates``
#: (docs/surrogates.md).
LSAM_RHO = 0.1


@contextlib.contextmanager
def _frozen_bn_statistics(model: nn.Module):
    """Keep every BatchNorm's running statistics as they are for the block."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved, strict=True):
                for k, v in buffers.items():
                    getattr(m, k).copy_(v)


@register_training_method("sam")
class SAM(TrainingMethod):
    """SAM with radius ``rho`` (> 0, default 0.05); ``adaptive=True`` for ASAM."""

    default_rho = 0.05

    def __init__(self, rho: float | None = None, adaptive: bool = False, **options):
        super().__init__(**options)
        rho = self.default_rho if rho is None else rho
        self.options = {"rho": check_positive(rho, "rho"), "adaptive": bool(adaptive)}

    def step(self, model, optimizer, closure):
        loss = closure()  # g = ∇L(w)
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        with torch.no_grad():
            if self.options["adaptive"]:
                scaled = [p.abs() * p.grad for p in params]  # T g
                norm = torch.linalg.vector_norm(torch.stack(
                    [torch.linalg.vector_norm(s) for s in scaled]))
                shifts = [p.abs() * s for p, s in zip(params, scaled, strict=True)]  # T² g
            else:
                norm = torch.linalg.vector_norm(torch.stack(
                    [torch.linalg.vector_norm(p.grad) for p in params]))
                shifts = [p.grad for p in params]
            scale = self.options["rho"] / norm.clamp_min(1e-12)
            shifts = [s * scale for s in shifts]
            for p, e in zip(params, shifts, strict=True):
                p.add_(e)
        with _frozen_bn_statistics(model):
            closure()  # ∇L(w + ε̂)
        with torch.no_grad():
            for p, e in zip(params, shifts, strict=True):
                p.sub_(e)
        optimizer.step()
        return loss


@register_training_method("lsam")
class LSAM(SAM):
    """l-SAM: SAM with a large radius (default :data:`LSAM_RHO`), the flat-neighbourhood
    surrogate of Gubri et al. (2023), whose adversarial examples transfer better."""

    default_rho = LSAM_RHO
