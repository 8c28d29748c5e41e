"""Attribution-map affinity of two models (Song et al., "Deep model transferability from
attribution maps", NeurIPS 2019).

An attribution map says how much each input pixel drives a model's outputs: saliency
``|∇ₓ Σₖ out_k(x)|`` or gradient × input ``x ⊙ ∇ₓ Σₖ out_k(x)``, averaged over channels and
flattened. The affinity of two models is the mean over probe inputs of the cosine of
their maps. It needs no labels, and the models' output sizes may differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .._results import Result
from .._validation import check_choice, check_images, check_int, check_same_device
from ._gradients import cosine, input_gradients

__all__ = ["ATTRIBUTIONS", "AffinityResult", "attribution_maps", "attribution_affinity"]

#: The attribution maps: saliency and gradient × input.
ATTRIBUTIONS = ("saliency", "grad_input")


@dataclass(frozen=True, eq=False)  # holds tensors/arrays: compare fields
class AffinityResult(Result):
    """Mean and per-sample cosine of two models' attribution maps (of ``attribution``)."""

    mean: float
    per_sample: torch.Tensor
    attribution: str

    schema: ClassVar[int] = 2
    renamed: ClassVar[dict] = {"method": "attribution"}

    def __float__(self) -> float:
        return self.mean


def _sum_of_outputs(out: torch.Tensor) -> torch.Tensor:
    return out.sum()


def attribution_maps(model: nn.Module, x: torch.Tensor, attribution: str = "saliency", *,
                     batch_size: int = 256) -> torch.Tensor:
    """Channel-averaged attribution maps N×H×W (float64, CPU) of images ``x`` N×C×H×W.

    ``"saliency"``: ``mean_c |∇ₓ Σ out|``; ``"grad_input"``: ``mean_c x ⊙ ∇ₓ Σ out``
    (Song et al. 2019, Sec. 3.2). The model runs in eval mode, restored afterwards.
    """
    check_choice(attribution, "attribution", ATTRIBUTIONS)
    x = check_images(x, "x")
    batch_size = check_int(batch_size, "batch_size")
    grad = input_gradients(model, _sum_of_outputs, x, batch_size=batch_size)
    maps = grad.abs() if attribution == "saliency" else grad * x.detach().cpu().double()
    return maps.mean(dim=1)


def attribution_affinity(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor,
                         attribution: str = "saliency", *, batch_size: int = 256
                         ) -> AffinityResult:
    """Mean over ``x`` of cos(A_a(x), A_b(x)) of the flattened maps (Song et al. 2019)."""
    check_same_device(model_a=model_a, model_b=model_b)
    if len(check_images(x, "x")) == 0:
        raise ValueError("x: is an empty batch")
    cos = cosine(attribution_maps(model_a, x, attribution, batch_size=batch_size),
                 attribution_maps(model_b, x, attribution, batch_size=batch_size))
    return AffinityResult(mean=float(cos.mean()), per_sample=cos, attribution=attribution)
