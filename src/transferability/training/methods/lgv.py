"""LGV, large geometric vicinity (Gubri et al., ECCV 2022).

From a trained model, SGD continues at a constant, high learning rate (their ImageNet
setting: lr 0.05, momentum 0.9, weight decay 1e-4, 10 epochs) and collects ``per_epoch``
copies of the weights per epoch, evenly spaced (4 per epoch, K = 40 in the paper). The
collected models form an ensemble surrogate that the attack samples one model per
iteration, shuffled (:class:`~transferability.models.Ensemble` with ``sample=1``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..._validation import check_int
from .base import TrainingMethod, register_training_method

__all__ = ["LGV", "lgv_members"]


@register_training_method("lgv")
class LGV(TrainingMethod):
    """Collect ``per_epoch`` (≥ 1, default 4) weight copies per epoch at a constant lr."""

    default_schedule = "constant"

    def __init__(self, per_epoch: int = 4, **options):
        super().__init__(**options)
        self.options = {"per_epoch": check_int(per_epoch, "per_epoch", maximum=1000)}
        self._collected: list[dict[str, torch.Tensor]] = []

    def on_train_begin(self, model, steps_per_epoch):
        per_epoch = self.options["per_epoch"]
        if per_epoch > steps_per_epoch:
            raise ValueError(f"per_epoch: {per_epoch} copies per epoch, but an epoch has only "
                             f"{steps_per_epoch} steps")
        # the last step of each of per_epoch equal parts of the epoch
        self._at = {round((j + 1) * steps_per_epoch / per_epoch) - 1 for j in range(per_epoch)}
        self._collected = []

    def on_step_end(self, model, epoch, step_in_epoch):
        if step_in_epoch in self._at:
            self._collected.append({k: v.detach().cpu().clone()
                                    for k, v in model.state_dict().items()})

    def result(self) -> dict:
        return {"members": list(self._collected)}


def lgv_members(model: nn.Module, states: list[dict[str, torch.Tensor]]) -> list[nn.Module]:
    """The collected weights as models: copies of ``model`` (eval mode) with each state."""
    if not states:
        raise ValueError("states: LGV collected no weights (K < 1)")
    members = []
    for state in states:
        member = copy.deepcopy(model)
        member.load_state_dict(state)
        members.append(member.eval())
    return members
