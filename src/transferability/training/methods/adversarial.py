"""Adversarial training: PGD-AT (Madry et al., ICLR 2018) and CARTL's feature-distance
minimisation (Chen et al., ICML 2021).

Both craft L∞ PGD-k examples for every batch (default k = 7, step 2.5·ε/k, random start)
with the model in eval mode and its parameters frozen — CARTL's convention, also what an
:class:`~transferability.attacks.Attack` does — then train in train mode on them.

``warmup_epochs`` ramps ε (and the step) linearly from ε/steps-of-warm-up to ε over the
first epochs, batch by batch, as robust-training recipes do: PGD-AT at a large ε from
scratch can stay at chance. A run whose accuracy on its adversarial batches in the last
epoch stays within 1.5× chance warns (:class:`ChanceAccuracyWarning`).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from ..._validation import check_eps, check_int, check_positive, check_unit_interval
from ...attacks import PGD, AttackSpec
from ...features import forward_with_features
from .base import TrainingMethod, register_training_method

__all__ = ["PGDAdversarialTraining", "FeatureDistanceMinimisation", "ChanceAccuracyWarning"]


class ChanceAccuracyWarning(UserWarning):
    """Adversarial training ended with its training accuracy at chance: the model learnt
    nothing (try ``warmup_epochs``, a smaller ε or more epochs)."""


class _Adversarial(TrainingMethod):
    """Options and the per-batch attack shared by the adversarial methods."""

    def __init__(self, eps: float, steps: int = 7, alpha: float | None = None, *,
                 warmup_epochs: int = 0, **options):
        super().__init__(**options)
        eps = check_eps(eps)
        steps = check_int(steps, "steps", maximum=1000)
        alpha = 2.5 * eps / steps if alpha is None else check_positive(alpha, "alpha")
        self.options = {"eps": eps, "steps": steps, "alpha": alpha}
        #: the PGD of every batch (L∞, random start), built through the attack registry
        self.attack = AttackSpec("pgd", {"eps": eps, "alpha": alpha, "steps": steps})
        if warmup_epochs:
            self.options["warmup_epochs"] = check_int(warmup_epochs, "warmup_epochs",
                                                      minimum=0, maximum=10_000)
        self._attacks: dict[int, PGD] = {}
        self._warmup_steps, self._step = 0, 0
        self._epoch, self._correct, self._seen, self._classes = 0, 0, 0, 0

    def on_train_begin(self, model, steps_per_epoch):
        self._warmup_steps = self.options.get("warmup_epochs", 0) * steps_per_epoch
        self._step = 0

    def on_step_end(self, model, epoch, step_in_epoch):
        self._step += 1
        if epoch != self._epoch:  # keep the accuracy of the current epoch only
            self._epoch, self._correct, self._seen = epoch, 0, 0

    def radius_factor(self) -> float:
        """The share of ε used at the current step: linear warm-up, then 1."""
        if self._step >= self._warmup_steps:
            return 1.0
        return (self._step + 1) / self._warmup_steps

    def adversarial(self, model, x, y) -> torch.Tensor:
        """PGD-k examples of the batch (eval mode, parameters frozen; both restored)."""
        o = self.options
        attack = self._attacks.get(id(model))
        if attack is None:
            attack = self._attacks[id(model)] = self.attack.create(model)
        factor = self.radius_factor()
        attack.eps, attack.alpha = o["eps"] * factor, o["alpha"] * factor
        return attack(x, y)

    def track(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Count the batch's correct predictions on its adversarial examples."""
        self._correct += int((logits.detach().argmax(1) == y).sum())
        self._seen += len(y)
        self._classes = logits.shape[1]

    def result(self) -> dict:
        if self._seen:
            accuracy, chance = self._correct / self._seen, 1 / self._classes
            if accuracy <= 1.5 * chance:
                warnings.warn(
                    f"{self.name}: training accuracy on the adversarial examples of the last "
                    f"epoch is {accuracy:.3f}, at chance ({chance:.3f}); the model learnt "
                    "nothing. Use warmup_epochs, a smaller eps or more epochs.",
                    ChanceAccuracyWarning, stacklevel=3)
        return {}


@register_training_method("pgd_at")
class PGDAdversarialTraining(_Adversarial):
    """PGD adversarial training: CE on PGD-k examples; with ``mix`` in [0, 1] the loss is
    ``(1 − mix)·CE(x′) + mix·CE(x)``. Options: ``eps`` (required), ``steps`` (7), ``alpha``
    (2.5·ε/k), ``mix`` (0), ``warmup_epochs`` (0: no ε warm-up)."""

    def __init__(self, eps: float, steps: int = 7, alpha: float | None = None,
                 mix: float = 0.0, **options):
        super().__init__(eps, steps, alpha, **options)
        self.options["mix"] = check_unit_interval(mix, "mix")

    def loss(self, model, x, y):
        logits = model(self.adversarial(model, x, y))
        self.track(logits, y)
        loss = F.cross_entropy(logits, y)
        mix = self.options["mix"]
        return loss if not mix else (1 - mix) * loss + mix * F.cross_entropy(model(x), y)


@register_training_method("cartl_fdm")
class FeatureDistanceMinimisation(_Adversarial):
    """CARTL's source training: CE(f(x′), y) + λ·Σ_{i∈batch} ‖h_k(x′_i) − h_k(x_i)‖₂ / √d,
    with h_k the input of the k-th backbone block from the end (the cut of later
    fine-tuning) and d its flattened size (Chen et al. 2021, Eq. 6 and their code). Options:
    ``eps`` (required), ``steps`` (7), ``alpha``, ``lam`` (λ ≥ 0, 0.005), ``k`` (1)."""

    def __init__(self, eps: float, steps: int = 7, alpha: float | None = None,
                 lam: float = 0.005, k: int = 1, **options):
        super().__init__(eps, steps, alpha, **options)
        self.options["lam"] = check_positive(lam, "lam", allow_zero=True)
        self.options["k"] = check_int(k, "k")

    def on_train_begin(self, model, steps_per_epoch):
        super().on_train_begin(model, steps_per_epoch)
        blocks = getattr(model, "backbone", None)
        k = self.options["k"]
        if not isinstance(blocks, torch.nn.Sequential):
            raise ValueError("model: cartl_fdm needs a library Classifier (its backbone blocks "
                             "mark the cut of later fine-tuning)")
        if k > len(blocks):
            raise ValueError(f"k: the backbone has {len(blocks)} blocks, got k={k}")
        self._layer = f"backbone.{len(blocks) - k}"

    def loss(self, model, x, y):
        x_adv = self.adversarial(model, x, y)
        h_adv, logits = forward_with_features(model, x_adv, layer=self._layer, layer_input=True)
        h_clean, _ = forward_with_features(model, x, layer=self._layer, layer_input=True)
        self.track(logits, y)
        distance = (h_adv - h_clean).norm(dim=1).sum() / math.sqrt(h_adv.shape[1])
        return F.cross_entropy(logits, y) + self.options["lam"] * distance
