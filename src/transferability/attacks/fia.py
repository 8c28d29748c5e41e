"""FIA, the feature importance-aware attack (Wang et al., "Feature Importance-aware
Transferable Adversarial Attacks", ICCV 2021)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_unit_interval
from ..features import feature_tap
from .ila import check_layer, layer_features
from .mifgsm import MIFGSM
from .registry import register_attack

__all__ = ["FIA"]


@register_attack("fia", randomized=True, quick={"copies": 2})
class FIA(MIFGSM):
    """MI-FGSM on the features at ``layer``, weighted by their aggregate importance.

    Wang et al. (2021), Eq. 5–7: ``Δ = Σₙ ∂z_y(x ⊙ Mₙ)/∂F(x ⊙ Mₙ)`` over ``N`` random
    pixel masks ``Mₙ ~ Bernoulli(1 − p_d)``, normalised by ‖Δ‖₂; the attack minimises
    ``Σ Δ ⊙ F(x_adv)`` (maximises it towards the target when ``targeted``). Paper
    defaults: N = 30, p_d = 0.3, 10 steps of ε/10, μ = 1. The masked copies are batched
    ``copies_batch`` at a time; the aggregate costs N gradients once, then one per step.

    Args:
        layer: the intermediate module, by name.
        copies: N; drop: p_d.
        **options: as in :class:`~transferability.attacks.MIFGSM`.
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, layer: str, copies: int = 30, drop: float = 0.3,
                 **options):
        super().__init__(model, eps, alpha, steps, **options)
        self.layer = check_layer(model, layer)
        self.copies = check_int(copies, "copies", maximum=1000)
        self.drop = check_unit_interval(drop, "drop")
        self._weights = None

    def aggregate(self, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator | None) -> torch.Tensor:
        """Δ, N×D: the normalised aggregate gradient of the label's logit."""
        masks = torch.rand((self.copies, *x.shape), generator=generator, device=x.device,
                           dtype=x.dtype) >= self.drop
        per = self.copies if self.copies_batch is None else self.copies_batch
        total = 0
        for start in range(0, self.copies, per):
            chunk = (x * masks[start:start + per]).flatten(0, 1).requires_grad_(True)
            labels = y.repeat(len(chunk) // len(x))
            with torch.enable_grad(), feature_tap(self.model, self.layer) as store:
                logits = self.model(chunk)
                feats = store["features"]
                (grad,) = torch.autograd.grad(logits.gather(1, labels[:, None]).sum(), feats)
            total = total + grad.flatten(1).view(-1, len(x), grad[0].numel()).sum(0)
        return total / total.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def perturb(self, x, y, generator):
        self._weights = self.aggregate(x, y, generator)
        try:
            return super().perturb(x, y, generator)
        finally:
            self._weights = None

    def _loss(self, inputs, y):
        k = len(inputs) // len(self._weights)
        weighted = (layer_features(self.model, inputs, self.layer)
                    * self._weights.repeat(k, 1)).sum()
        return weighted if self.targeted else -weighted

