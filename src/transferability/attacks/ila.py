"""ILA, the intermediate level attack (Huang et al., "Enhancing Adversarial Example
Transferability with an Intermediate Level Attack", ICCV 2019)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int
from ..features import feature_tap
from .pgd import PGD
from .registry import register_attack

__all__ = ["ILA"]


def layer_features(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of module ``layer`` for ``x``, flattened to N×D (gradients flow)."""
    with feature_tap(model, layer) as store:
        model(x)
    out = store["features"]
    return (out[0] if isinstance(out, tuple | list) else out).flatten(1)


def check_layer(model: nn.Module, layer: str) -> str:
    """``layer`` if ``model`` has a module of that name (else the one-line ``layer:`` error)."""
    with feature_tap(model, layer):
        pass
    return layer


@register_attack("ila")
class ILA(PGD):
    """Push the features at ``layer`` further along the direction a base attack found.

    Huang et al. (2019), Eq. 2 (the projection loss, ILAP): with ``x'`` from a base attack
    (I-FGSM, ``base_steps`` steps of ε/``base_steps``), ascend
    ``(F(x_adv) − F(x)) · (F(x') − F(x)) / ‖F(x') − F(x)‖`` by I-FGSM steps of ε/``steps``
    from ``x`` (10 and 10 steps as in the paper's experiments).

    Args:
        layer: the intermediate module, by name (any of ``model.named_modules()``).
        base_steps: iterations of the base attack.
        **options: as in :class:`~transferability.attacks.PGD` (no random start).
    """

    alpha_factor = 1.0

    def __init__(self, model: nn.Module, eps: float, alpha: float | None = None,
                 steps: int = 10, *, layer: str, base_steps: int = 10, **options):
        super().__init__(model, eps, alpha, steps, random_start=False, **options)
        self.layer = check_layer(model, layer)
        self.base_steps = check_int(base_steps, "base_steps")
        self._anchor = self._guide = None

    def perturb(self, x, y, generator):
        base = PGD(self.model, self.eps, self.eps / self.base_steps, self.base_steps,
                   random_start=False, norm=self.norm, targeted=self.targeted, loss=self.loss,
                   input_transform=self.input_transform)
        x_base = base.perturb(x, y, generator)
        with torch.no_grad():
            self._anchor = layer_features(self.model, x, self.layer)
            guide = layer_features(self.model, x_base, self.layer) - self._anchor
            self._guide = guide / guide.norm(dim=1, keepdim=True).clamp_min(1e-12)
        try:
            return super().perturb(x, y, generator)
        finally:
            self._anchor = self._guide = None

    def _loss(self, inputs, y):
        k = len(inputs) // len(self._anchor)
        shift = layer_features(self.model, inputs, self.layer) - self._anchor.repeat(k, 1)
        return (shift * self._guide.repeat(k, 1)).sum()
