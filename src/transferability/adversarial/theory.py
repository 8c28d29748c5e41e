"""The authors' synthetic check of the theory, with exact Jacobians (Liang et al. 2021, Sec. 5.1).

A small tanh MLP f_T defines a regression task on inputs x ~ U[0, 1]^d (the task is to
predict f_T(x), so f_T is the perfect target model). Sources are copies of f_T whose every
weight tensor is perturbed, W + s·rms(W)·Z with one fixed Gaussian draw Z and a growing
scale s. Per scale we report α1, α2, α12 in the paper's direction (attacks on the target,
transferred to the source, α^{T→S}) and the affine-fit loss of the target's outputs from the
source's (knowledge transfer S → T). The theory predicts that α falls as s grows while the
fit loss rises.

The attack is first-order and L2. To first order f(x + δ) − f(x) = J_f(x) δ, and the
maximiser of ‖J δ‖₂ over ‖δ‖₂ ≤ ε is δ = ±ε v₁(J), the top right singular vector of the
attacked model's Jacobian. So Δ_{g→g} = ε J_g v₁(J_g), Δ_{g→f} = ε J_f v₁(J_g) and
Δ_{f→f} = ε J_f v₁(J_f); ε and the sign of v₁ cancel in α1, α2 and α12, so none is needed.
(An L∞ first-order attack would be a sign vector instead, not a singular vector.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .._results import Result
from .._validation import check_int, check_positive, check_seed
from ..devices import resolve_device
from ..utils import evaluating
from .affine import affine_fit_loss
from .alpha import AlphaResult, alpha_statistics

__all__ = ["TheoryRow", "jacobians", "linearized_alpha", "synthetic_target", "perturb_weights",
           "theory_check"]


@dataclass(frozen=True)
class TheoryRow(Result):
    """One perturbation scale: α^{T→S} (α2, α12 in the chosen form) and the fit loss S → T."""

    scale: float
    alpha1: float
    alpha2: float
    alpha12: float
    alpha1_alpha2: float
    fit_loss: float


def jacobians(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Exact per-sample Jacobians N × d_out × d_in of ``model`` at inputs ``x`` (N × …).

    Each sample goes through the model as a batch of one, so any batched model works;
    the input dimensions are flattened into d_in.
    """
    def single(xi: torch.Tensor) -> torch.Tensor:
        return model(xi.unsqueeze(0)).squeeze(0)

    with evaluating(model):
        jac = torch.func.vmap(torch.func.jacrev(single))(x).detach()
    return jac.reshape(len(x), -1, x[0].numel())


def linearized_alpha(from_model: nn.Module, to_model: nn.Module, x: torch.Tensor, *,
                     squared: bool = True) -> AlphaResult:
    """α^{g→f} under the first-order L2 attack δ ∝ v₁(J(x)) (see module; Liang et al. Def. 1–2)."""
    j_g, j_f = jacobians(from_model, x), jacobians(to_model, x)
    v_g = torch.linalg.svd(j_g, full_matrices=False).Vh[:, 0]
    v_f = torch.linalg.svd(j_f, full_matrices=False).Vh[:, 0]
    return alpha_statistics(torch.einsum("nij,nj->ni", j_g, v_g),
                            torch.einsum("nij,nj->ni", j_f, v_g),
                            torch.einsum("nij,nj->ni", j_f, v_f), squared=squared)


def synthetic_target(d: int = 8, hidden: int = 32, out: int = 4, *, gain: float = 2.5,
                     seed: int = 0) -> nn.Sequential:
    """The target f_T: a float64 tanh MLP d → hidden → hidden → out with N(0, gain²/fan_in)
    weights (large enough that f_T is far from affine on [0, 1]^d)."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate([(d, hidden), (hidden, hidden), (hidden, out)]):
        linear = nn.Linear(fan_in, fan_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(fan_out, fan_in, generator=g, dtype=torch.float64)
                                * gain / fan_in ** 0.5)
            linear.bias.copy_(torch.randn(fan_out, generator=g, dtype=torch.float64) * 0.5)
        layers += [linear] if i == 2 else [linear, nn.Tanh()]
    return nn.Sequential(*layers).requires_grad_(False)


def perturb_weights(model: nn.Module, scale: float, *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with each parameter P ← P + scale·rms(P)·Z, Z ~ N(0, 1).

    The same ``seed`` draws the same Z for every scale, so sources differ only in how far
    they move along one random direction.
    """
    scale = check_positive(scale, "scale", allow_zero=True)
    source = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in source.parameters():
            z = torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device)
            p.add_(scale * p.pow(2).mean().sqrt() * z)
    return source


def theory_check(scales: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.8, 1.6), *, n: int = 1000,
                 d: int = 8, hidden: int = 32, out: int = 4, squared: bool = True,
                 seed: int = 0, device: str | torch.device | None = None) -> list[TheoryRow]:
    """α^{T→S} and the affine-fit loss of f_T from f_S, per perturbation scale (see module).

    The models, inputs and Jacobians live on ``device`` (default: the CPU); the random
    draws are made
    on the CPU, so every device sees the same models and inputs."""
    n = check_int(n, "n", minimum=2, maximum=1_000_000)
    scales = [check_positive(s, "scales", allow_zero=True) for s in scales]
    if any(s > 100 for s in scales):
        raise ValueError(f"scales: perturbation scales are relative to the weights' RMS; "
                         f"expected values in [0, 100], got {max(scales)}")
    seed = check_seed(seed)
    device = torch.device("cpu") if device is None else \
        resolve_device(device)
    target = synthetic_target(d, hidden, out, seed=seed).to(device)
    x = torch.rand(n, check_int(d, "d"), generator=torch.Generator().manual_seed(seed + 1),
                   dtype=torch.float64).to(device)
    with torch.no_grad():
        target_out = target(x)
    rows = []
    for scale in scales:
        source = perturb_weights(target, scale, seed=seed + 2)
        result = linearized_alpha(target, source, x, squared=squared)
        with torch.no_grad():
            fit = affine_fit_loss(source(x), target_out)
        rows.append(TheoryRow(scale=float(scale), alpha1=result.alpha1, alpha2=result.alpha2,
                              alpha12=result.alpha12, alpha1_alpha2=result.alpha1_alpha2,
                              fit_loss=fit))
    return rows
