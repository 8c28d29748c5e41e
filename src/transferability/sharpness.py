"""Sharpness of the loss in weight space: Hessian top eigenvalue, Hessian trace and the
loss rise under random weight perturbations.

The loss is L(w) = (1/N) Σᵢ CE(model(xᵢ), yᵢ), taken over the parameters w that have
``requires_grad`` (a frozen backbone is left out: the sharpness is that of the weights
fine-tuning would move), with the model in eval mode. Flat minima generalise better
(Keskar et al. 2017; Foret et al. 2021, SAM), and LGV (Gubri et al., "LGV: Boosting
adversarial example transferability from large geometric vicinity", ECCV 2022, §4) links
the transferability of adversarial examples crafted on a surrogate to the flatness of its
weights, measured with these quantities:

* ``hessian_top``: λ_max(∇²L) by power iteration on Hessian-vector products (Pearlmutter
  1994; PyHessian, Yao et al. 2020);
* ``hessian_trace``: tr(∇²L) = E_v[vᵀ∇²L v], v Rademacher (Hutchinson 1990; Yao et al. 2020);
* ``random_weight``: E_d[L(w + r·d) − L(w)] over filter-normalised Gaussian directions d
  (Li et al., "Visualizing the loss landscape of neural nets", NeurIPS 2018, §4), with the
  BatchNorm statistics re-estimated at every point, as SWA's ``update_bn`` does
  (Izmailov et al. 2018).

The Hessian measures change under reparametrisations that leave the function unchanged
(Dinh et al. 2017); filter normalisation makes ``random_weight`` follow each filter's scale.
Everything is accumulated over batches of ``batch_size``, so memory is bounded for any N.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._results import Result
from ._validation import (
    check_choice,
    check_images,
    check_int,
    check_labels_tensor,
    check_positive,
    check_seed,
    model_device,
    model_dtype,
)
from .utils import batches, evaluating, progress

__all__ = ["SharpnessResult", "sharpness", "hessian_vector_product", "MEASURES"]

Vector = list[torch.Tensor]
_TINY = 1e-12
#: Hutchinson probes share one forward/backward per batch, at most this many scalars at once.
_PROBE_ELEMENTS = 1 << 25


@dataclass(frozen=True)
class SharpnessResult(Result):
    """One sharpness measure of L at the model's weights.

    ``value`` is the estimate, ``stderr`` its standard error (Monte-Carlo measures; ``None``
    otherwise or with a single draw), ``loss`` is L(w) as the model stands, ``parameters``
    the number of scalars measured. ``iterations``/``converged``: power iterations
    (``hessian_top``); ``samples``: probes or directions; ``radius``: for ``random_weight``.
    """

    measure: str
    value: float
    loss: float
    parameters: int
    stderr: float | None = None
    iterations: int | None = None
    converged: bool | None = None
    samples: int | None = None
    radius: float | None = None

    def __float__(self) -> float:
        return self.value


# ---------------------------------------------------------------- loss and Hessian-vector products

def _batch_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """Per-batch terms Σ_{i∈b} CE(model(xᵢ), yᵢ) / N, whose sum is L(w)."""
    device, dtype, n = model_device(model), model_dtype(model), len(x)
    for xb, yb in batches(x, y, batch_size=batch_size):
        yield F.cross_entropy(model(xb.to(device, dtype)), yb.to(device), reduction="sum") / n


def _mean_loss(model, x, y, batch_size: int) -> float:
    with torch.no_grad():
        return float(sum(term.double() for term in _batch_losses(model, x, y, batch_size)))


def _gradient_graph(term: torch.Tensor, params: Vector) -> tuple[Vector, list[int]]:
    """∇term with its graph kept (``create_graph``), for the parameters it depends on."""
    grads = torch.autograd.grad(term, params, create_graph=True, allow_unused=True,
                                materialize_grads=True)
    live = [i for i, g in enumerate(grads) if g.requires_grad]
    return [grads[i] for i in live], live


def _hv(graph: tuple[Vector, list[int]], params: Vector, v: Vector, retain: bool) -> Vector:
    """H·v as the gradient of g·v: one vector-Jacobian product of the gradient graph."""
    grads, live = graph
    if not live:  # the gradient does not depend on w: H = 0
        return [torch.zeros_like(p) for p in params]
    return list(torch.autograd.grad(grads, params, grad_outputs=[v[i] for i in live],
                                    retain_graph=retain, allow_unused=True,
                                    materialize_grads=True))


def _hvps(model, params: Vector, x, y, vectors: Sequence[Vector], batch_size: int
          ) -> tuple[float, list[Vector]]:
    """L(w) and H·v for each v, summed over batches (per batch, one gradient graph shared by
    all the vectors)."""
    out: list[Vector] = [[] for _ in vectors]
    loss = torch.zeros((), dtype=torch.float64, device=params[0].device)
    with torch.enable_grad():
        for term in _batch_losses(model, x, y, batch_size):
            graph = _gradient_graph(term, params)
            for k, v in enumerate(vectors):
                hv = _hv(graph, params, v, retain=k < len(vectors) - 1)
                out[k] = hv if not out[k] else [a.add_(h) for a, h in zip(out[k], hv, strict=True)]
            loss += term.detach().double()
    return float(loss), out


def _hessian_operator(model, params: Vector, x, y, batch_size: int
                      ) -> Callable[[Sequence[Vector]], list[Vector]]:
    """vectors ↦ [H·v]. When x fits in one batch its gradient graph is built once and kept,
    so repeated products (power iterations, probes) skip the forward and first backward;
    the memory held is that of one batch's product either way."""
    if len(x) > batch_size:
        return lambda vectors: _hvps(model, params, x, y, vectors, batch_size)[1]
    with torch.enable_grad():
        graph = _gradient_graph(next(_batch_losses(model, x, y, batch_size)), params)
    return lambda vectors: [_hv(graph, params, v, True) for v in vectors]


def _dot(u: Vector, v: Vector) -> torch.Tensor:
    return torch.stack([(a * b).sum(dtype=torch.float64) for a, b in zip(u, v, strict=True)]).sum()


def _gaussian(params: Vector, generator: torch.Generator) -> Vector:
    return [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]


def _rademacher(params: Vector, generator: torch.Generator) -> Vector:
    return [(torch.randint(0, 2, p.shape, generator=generator) * 2 - 1).to(p.device, p.dtype)
            for p in params]


# ---------------------------------------------------------------- the measures

def _power(operator: Callable[[Vector], Vector], v: Vector, *, max_iter: int, tol: float,
           offset: float, bar) -> tuple[float, int, bool]:
    """Power iteration: λ = offset + vᵀAv (Rayleigh quotient, ‖v‖ = 1), v ← Av/‖Av‖, until
    |Δλ| ≤ tol·|λ|. Returns (λ, iterations, converged)."""
    norm = float(_dot(v, v).sqrt())
    v = [a / norm for a in v]
    estimate = None
    for it in range(1, max_iter + 1):
        av = operator(v)
        new = offset + float(_dot(v, av))
        bar.update()
        norm = float(_dot(av, av).sqrt())
        if norm == 0 or (estimate is not None and abs(new - estimate) <= tol * abs(new)):
            return new, it, True
        v, estimate = [a / norm for a in av], new
    return estimate, max_iter, False


def _hessian_top(model, params, x, y, *, batch_size, seed, max_iter, tol, show_progress, **_):
    """λ_max(H) by power iteration (Yao et al. 2020, Alg. 1). Power iteration finds the
    eigenvalue of largest magnitude λ₁; when λ₁ < 0 (a saddle dominated by negative
    curvature) it runs again on H − λ₁I, whose eigenvalues λ − λ₁ are ≥ 0, so the result is
    always the algebraically largest eigenvalue (at most ``max_iter`` iterations per run)."""
    generator = torch.Generator().manual_seed(seed)
    operator = _hessian_operator(model, params, x, y, batch_size)

    def hv(v):
        return operator([v])[0]

    with progress(total=max_iter, desc="sharpness hessian_top", enabled=show_progress) as bar:
        top, iterations, converged = _power(hv, _gaussian(params, generator), max_iter=max_iter,
                                            tol=tol, offset=0.0, bar=bar)
        if top < 0:
            shift = top
            top, more, ok = _power(lambda v: [h - shift * u for h, u in zip(hv(v), v, strict=True)],
                                   _gaussian(params, generator), max_iter=max_iter, tol=tol,
                                   offset=shift, bar=bar)
            iterations, converged = iterations + more, converged and ok
    return {"value": top, "iterations": iterations, "converged": converged}


def _hessian_trace(model, params, x, y, *, batch_size, seed, samples, show_progress, **_):
    """Hutchinson: tr(H) ≈ (1/S) Σₛ vₛᵀHvₛ, vₛ Rademacher, standard error std/√S. Exact on a
    diagonal H (vᵢ² = 1); the variance is 2 Σ_{i≠j} H²ᵢⱼ (Hutchinson 1990)."""
    generator = torch.Generator().manual_seed(seed)
    per_pass = max(1, min(samples, _PROBE_ELEMENTS // sum(p.numel() for p in params)))
    operator, draws = _hessian_operator(model, params, x, y, batch_size), []
    with progress(total=samples, desc="sharpness hessian_trace", enabled=show_progress) as bar:
        for start in range(0, samples, per_pass):
            probes = [_rademacher(params, generator) for _ in range(min(per_pass, samples - start))]
            products = operator(probes)
            draws += [_dot(v, hv) for v, hv in zip(probes, products, strict=True)]
            bar.update(len(probes))
    draws = torch.stack(draws).cpu()
    stderr = float(draws.std() / math.sqrt(samples)) if samples > 1 else None
    return {"value": float(draws.mean()), "stderr": stderr, "samples": samples}


def _reestimate_batchnorm(model, norms: list[_BatchNorm], x, batch_size: int) -> None:
    """Running statistics as cumulative averages over x (momentum=None), BN-only train mode."""
    device, dtype = model_device(model), model_dtype(model)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for (xb,) in batches(x, batch_size=batch_size):
            model(xb.to(device, dtype))
    for m in norms:
        m.eval()


def _random_weight(model, params, x, y, *, batch_size, seed, radius, directions, show_progress,
                   **_):
    """Mean of L(w + r·d) − L(w) over directions d (Li et al. 2018, §4, Eq. 1 with filter
    normalisation). d is drawn, for each trainable parameter with ≥ 2 dimensions in
    ``model.parameters()`` order, as a standard normal tensor from a CPU generator seeded
    with ``seed``; each filter/row d_f (slice along dim 0) is rescaled to ‖w_f‖. Biases and
    other 1-D parameters (BatchNorm's included) get a zero direction. Every filter thus moves
    by exactly r·‖w_f‖, and the whole step has norm r·‖w‖ over the perturbed parameters.
    Both losses use BatchNorm statistics re-estimated on x (so r → 0 gives 0); the
    re-estimation runs the BatchNorm layers alone in train mode (dropout stays off), in
    batches of ``batch_size`` as in training, so with BatchNorm the value depends on it."""
    weights = [p for p in params if p.ndim >= 2]
    if not weights:
        raise ValueError("model: random_weight perturbs trainable weight matrices and filters "
                         "(parameters with >= 2 dimensions); the model has none")
    norms = [w.detach().flatten(1).norm(dim=1) for w in weights]
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved_weights = [w.detach().clone() for w in weights]
    saved_bns = [(m, m.momentum, [b.clone() for b in m.buffers(recurse=False)]) for m in bns]
    generator = torch.Generator().manual_seed(seed)

    def loss_here() -> float:
        if bns:
            _reestimate_batchnorm(model, bns, x, batch_size)
        return _mean_loss(model, x, y, batch_size)

    rises = []
    try:
        with progress(total=directions, desc="sharpness random_weight",
                      enabled=show_progress) as bar:
            base = loss_here()
            for _ in range(directions):
                with torch.no_grad():
                    for w, w0, norm, d in zip(weights, saved_weights, norms,
                                              _gaussian(weights, generator), strict=True):
                        scale = norm / d.flatten(1).norm(dim=1).clamp_min(_TINY)
                        w.copy_(w0 + radius * d * scale.view(-1, *[1] * (d.ndim - 1)))
                loss = loss_here()
                if not math.isfinite(loss):
                    raise ValueError(f"radius: the loss at radius {radius} is {loss}; "
                                     "use a smaller radius")
                rises.append(loss - base)
                bar.update()
    finally:
        with torch.no_grad():
            for w, w0 in zip(weights, saved_weights, strict=True):
                w.copy_(w0)
            for m, momentum, buffers in saved_bns:
                m.momentum = momentum
                for b, b0 in zip(m.buffers(recurse=False), buffers, strict=True):
                    b.copy_(b0)
    rises = torch.tensor(rises, dtype=torch.float64)
    stderr = float(rises.std() / math.sqrt(directions)) if directions > 1 else None
    return {"value": float(rises.mean()), "stderr": stderr, "samples": directions,
            "radius": radius, "parameters": sum(w.numel() for w in weights)}


#: Sharpness measures by name: ``fn(model, params, x, y, **options) -> result fields``.
MEASURES: dict[str, Callable[..., dict]] = {
    "hessian_top": _hessian_top,
    "hessian_trace": _hessian_trace,
    "random_weight": _random_weight,
}


# ---------------------------------------------------------------- public API

def _check_inputs(model, x, y, batch_size) -> tuple[Vector, torch.Tensor, torch.Tensor, int]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    x = check_images(x, "x")
    if len(x) == 0:
        raise ValueError("x: is an empty batch")
    batch_size = check_int(batch_size, "batch_size")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no parameter with requires_grad=True; nothing to measure")
    with evaluating(model), torch.no_grad():
        logits = model(x[:1].to(model_device(model), model_dtype(model)))
    if logits.ndim != 2:
        raise ValueError(f"model: expected outputs shaped N×C, got {tuple(logits.shape)}")
    y = check_labels_tensor(y, "y", n=len(x), num_classes=logits.shape[1])
    return params, x, y, batch_size


def _check_finite(loss: float) -> float:
    if not math.isfinite(loss):
        raise ValueError(f"model: the loss is {loss} at these weights; check the model and x")
    return loss


def hessian_vector_product(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           vector: Sequence[torch.Tensor], *, batch_size: int = 256
                           ) -> list[torch.Tensor]:
    """H·v, H the Hessian of the mean cross-entropy L(w) over the trainable parameters, by
    double back-propagation (Pearlmutter 1994), accumulated over batches of ``batch_size``.

    ``vector`` holds one tensor per parameter with ``requires_grad``, in
    ``model.parameters()`` order, shaped like it; the result has the same layout. The
    model runs in eval mode (restored); no ``.grad`` is written.
    """
    params, x, y, batch_size = _check_inputs(model, x, y, batch_size)
    if isinstance(vector, torch.Tensor) or not isinstance(vector, Sequence) or \
            len(vector) != len(params) or not all(
                isinstance(v, torch.Tensor) and v.shape == p.shape
                for v, p in zip(vector, params, strict=False)):
        shapes = [tuple(p.shape) for p in params]
        raise ValueError(f"vector: expected a list of {len(params)} tensors shaped like the "
                         f"trainable parameters {shapes}")
    vector = [v.detach().to(p.device, p.dtype) for v, p in zip(vector, params, strict=True)]
    with evaluating(model):
        loss, (hv,) = _hvps(model, params, x, y, [vector], batch_size)
    _check_finite(loss)
    return hv


def sharpness(model: nn.Module, x: torch.Tensor, y: torch.Tensor, measure: str = "hessian_top",
              *, batch_size: int = 256, seed: int = 0, max_iter: int = 100, tol: float = 1e-3,
              samples: int = 100, radius: float = 0.1, directions: int = 20,
              show_progress: bool | None = None) -> SharpnessResult:
    """Sharpness of L(w) = mean CE(model(x), y) in weight space (see the module docstring).

    Args:
        measure: ``"hessian_top"`` (largest eigenvalue of ∇²L; ``max_iter`` power iterations
            at most, stopped when the estimate changes by ≤ ``tol`` relative),
            ``"hessian_trace"`` (Hutchinson with ``samples`` Rademacher probes: standard
            error ≈ 10% of the per-probe spread at the default 100) or ``"random_weight"``
            (mean loss rise over ``directions`` filter-normalised directions at relative
            ``radius``: each filter moves by ``radius`` times its own norm; with BatchNorm
            both losses of the difference use statistics re-estimated on x, while the
            result's ``loss`` is the model's own).
        batch_size: samples per forward/backward; results do not depend on it, except
            ``random_weight``'s BatchNorm statistics (re-estimated per batch, as in training).
        seed: seeds the random start, probes or directions (a CPU generator).

    Only parameters with ``requires_grad`` count; the model runs in eval mode and its
    modes, parameters, ``requires_grad`` flags and BatchNorm buffers are left as they were.
    """
    check_choice(measure, "measure", MEASURES)
    options = {"seed": check_seed(seed), "max_iter": check_int(max_iter, "max_iter"),
               "tol": check_positive(tol, "tol"), "samples": check_int(samples, "samples"),
               "radius": check_positive(radius, "radius"),
               "directions": check_int(directions, "directions"), "show_progress": show_progress}
    params, x, y, batch_size = _check_inputs(model, x, y, batch_size)
    with evaluating(model):
        loss = _check_finite(_mean_loss(model, x, y, batch_size))
        fields = {"parameters": sum(p.numel() for p in params),
                  **MEASURES[measure](model, params, x, y, batch_size=batch_size, **options)}
    return SharpnessResult(measure=measure, loss=loss, **fields)
