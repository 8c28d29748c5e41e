"""Non-expansive fine-tuning (NEFT) of CARTL (Chen et al., ICML 2021, Sec. 4.2).

Every ``Conv2d`` and ``Linear`` that fine-tuning trains is reparametrised
``W ← β·W/σ(W)`` (:mod:`torch.nn.utils.parametrize`), so each such layer is β-Lipschitz
and a perturbation of the frozen features cannot grow through the fine-tuned layers.
σ(W) is the operator norm of the layer's linear map (bias aside): the spectral norm of a
``Linear`` weight and, for a ``Conv2d``, the norm of the **convolution** on the layer's
input shape (captured at its first forward), not of the reshaped kernel. It is estimated
as in spectral normalisation (Miyato et al., ICLR 2018): persistent vectors ``u``, ``v``,
one power-iteration step per training forward, ``σ = uᵀ A v`` with gradients through
``A``; the convolution's adjoint is ``conv_transpose2d`` with the same stride, padding,
dilation and groups. :func:`bake_neft` refines σ and writes the parametrised weights back
as plain parameters.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .._validation import check_int, check_positive

__all__ = ["NonExpansive", "apply_neft", "bake_neft", "operator_norm"]


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm().clamp_min(1e-12)


def _conv_args(conv: nn.Conv2d) -> dict:
    """``F.conv2d`` keywords of a zero-padded ``conv`` (``"same"``/``"valid"`` resolved)."""
    padding = conv.padding
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        padding = tuple(t // 2 for t in total) if all(t % 2 == 0 for t in total) else None
    if conv.padding_mode != "zeros" or padding is None:
        raise ValueError(f"neft_beta: NEFT needs symmetric zero padding, got {conv}")
    return {"stride": conv.stride, "padding": padding, "dilation": conv.dilation,
            "groups": conv.groups}


class NonExpansive(nn.Module):
    """The parametrisation ``W ↦ β·W/σ(W)`` of one ``Conv2d`` or ``Linear`` (see the module
    docstring); ``input_shape`` (C, H, W) of a convolution is captured at its first forward
    by :func:`apply_neft` when not given."""

    def __init__(self, layer: nn.Module, beta: float, *, input_shape=None, init_iters: int = 50):
        super().__init__()
        if not isinstance(layer, nn.Conv2d | nn.Linear):
            raise ValueError(f"layer: NEFT reparametrises Conv2d and Linear, got {layer}")
        self.beta = check_positive(beta, "neft_beta")
        self.init_iters = check_int(init_iters, "init_iters", minimum=0)
        self.conv = _conv_args(layer) if isinstance(layer, nn.Conv2d) else None
        self.input_shape = (layer.in_features,) if self.conv is None else input_shape
        self.output_padding = None
        self.register_buffer("u", torch.empty(0))
        self.register_buffer("v", torch.empty(0))

    def capture(self, module: nn.Module, args) -> None:
        """Forward pre-hook: remember the input shape (C, H, W) at the first forward."""
        if self.input_shape is None:
            self.input_shape = tuple(args[0].shape[-3:])

    def linear_map(self, weight: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``A v``: the layer's linear map (no bias)."""
        return weight @ v if self.conv is None else F.conv2d(v, weight, None, **self.conv)

    def adjoint(self, weight: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``Aᵀ u``."""
        if self.conv is None:
            return weight.mT @ u
        c = self.conv
        return F.conv_transpose2d(u, weight, None, c["stride"], c["padding"],
                                  self.output_padding, c["groups"], c["dilation"])

    @torch.no_grad()
    def start(self, weight: torch.Tensor, iters: int) -> None:
        """Random unit ``v`` shaped like one input, then ``iters`` power-iteration steps."""
        if self.input_shape is None:
            raise ValueError("neft_beta: the input shape of a reparametrised Conv2d is known "
                             "only after its first forward")
        shape = self.input_shape if self.conv is None else (1, *self.input_shape)
        v = _unit(torch.randn(shape, device=weight.device, dtype=weight.dtype))
        out = self.linear_map(weight, v)
        if self.conv is not None:  # makes conv_transpose2d return the input's shape
            c = self.conv
            self.output_padding = tuple(
                i - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for i, o, s, p, d, k in zip(
                    v.shape[-2:], out.shape[-2:], c["stride"], c["padding"], c["dilation"],
                    weight.shape[-2:], strict=True))
        self.u, self.v = _unit(out), v
        self.iterate(weight, iters)

    @torch.no_grad()
    def iterate(self, weight: torch.Tensor, iters: int = 1) -> None:
        u, v = self.u, self.v
        for _ in range(iters):
            v = _unit(self.adjoint(weight, u))
            u = _unit(self.linear_map(weight, v))
        self.u, self.v = u, v  # new tensors: a graph built on the old ones stays valid

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """The estimate ``uᵀ A v`` of σ(W), differentiable in ``weight``."""
        return (self.u * self.linear_map(weight, self.v)).sum()

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.v.numel() == 0:
            self.start(weight.detach(), self.init_iters)
        elif self.training:  # one step per training forward, as spectral normalisation
            self.iterate(weight.detach())
        return self.beta * weight / self.sigma(weight)


def apply_neft(modules: Iterable[nn.Module], beta: float) -> list[nn.Module]:
    """Reparametrise every ``Conv2d`` and ``Linear`` inside ``modules`` with
    :class:`NonExpansive` (β = ``beta``); return those layers."""
    beta = check_positive(beta, "neft_beta")
    layers = list(dict.fromkeys(m for module in modules for m in module.modules()
                                if isinstance(m, nn.Conv2d | nn.Linear)))
    if not layers:
        raise ValueError("neft_beta: the trained blocks hold no Conv2d or Linear to "
                         "reparametrise")
    for layer in layers:
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"neft_beta: the weight of {layer} is already parametrised")
        param = NonExpansive(layer, beta)
        # unsafe: registering would evaluate σ before the input shape is known
        parametrize.register_parametrization(layer, "weight", param, unsafe=True)
        param.hook = layer.register_forward_pre_hook(param.capture)
    return layers


@torch.no_grad()
def bake_neft(model: nn.Module, refine_iters: int = 200) -> nn.Module:
    """Write every :class:`NonExpansive` weight of ``model`` back as a plain parameter
    (``leave_parametrized=True``), σ first refined by ``refine_iters`` more power-iteration
    steps so that the baked layer's norm is β up to the estimate's convergence. A layer
    that never ran keeps its raw weight. Returns ``model``."""
    refine_iters = check_int(refine_iters, "refine_iters", minimum=0)
    layers = [m for m in model.modules() if parametrize.is_parametrized(m, "weight")
              and any(isinstance(p, NonExpansive) for p in m.parametrizations.weight)]
    for layer in layers:
        plist = layer.parametrizations.weight
        param = next(p for p in plist if isinstance(p, NonExpansive))
        param.hook.remove()
        ran = param.v.numel() > 0
        if ran:
            param.iterate(plist.original, refine_iters)
        plist.eval()  # no further step while the weight is read out
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=ran)
    return model


@torch.no_grad()
def operator_norm(layer: nn.Module, input_shape=None, *, iters: int = 100) -> float:
    """σ of ``layer``'s linear map (its current, possibly parametrised, weight; no bias) by
    ``iters`` power-iteration steps; a ``Conv2d`` needs ``input_shape`` (C, H, W)."""
    if isinstance(layer, nn.Conv2d) and input_shape is None:
        raise ValueError("input_shape: a Conv2d's operator norm depends on its input shape")
    estimate = NonExpansive(layer, 1.0, input_shape=input_shape and tuple(input_shape))
    weight = layer.weight.detach()
    estimate.start(weight, check_int(iters, "iters"))
    return float(estimate.sigma(weight))
