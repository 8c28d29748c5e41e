"""Adversarial transferability α1 and α2 (Liang et al., ICML 2021, Sec. 3, Def. 1–2).

Adversarial examples are crafted on the "from" model g and shown to the "to" model f. With
δ_g(x) the attack on g, Δ_{g→f}(x) = f(x + δ_g(x)) − f(x) (outputs = logits) and a hat for
the unit vector, over the samples x that g classifies correctly:

    α1(x) = ‖Δ_{g→f}(x)‖₂ / ‖Δ_{f→f}(x)‖₂,   α1 = mean_x α1(x)                    (Def. 1)
    α2    = ‖ mean_x Δ̂_{g→g}(x) Δ̂_{g→f}(x)ᵀ ‖_F        (d_g × d_f, sizes may differ) (Def. 2)
    α12   = ‖ mean_x α1(x) Δ̂_{g→g}(x) Δ̂_{g→f}(x)ᵀ ‖_F   (the combined, α1-weighted term)

α1 compares how far g's attack moves f with how far f's own attack moves f; α2 measures how
consistently the direction of f's change follows the direction of g's. The authors' code
and tables use the *squared* Frobenius norms for α2 and α12; both forms are returned.

In the paper, knowledge transfer from a source S to a target T is indicated by α^{T→S}:
``alpha(reference_trained_on_target, source_model, target_images, target_labels)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .._results import Result
from .._validation import (
    check_images,
    check_int,
    check_labels_tensor,
    check_same_device,
)
from ..attacks import AttackFactory, AttackSpec, attack_batch, attack_factory
from ..features import check_finite_outputs, model_inputs, predict, run_model
from ..utils import batches, evaluating, frozen

__all__ = ["AlphaResult", "AttackFactory", "alpha", "alpha_both_ways", "alpha_to_many",
           "attack_reference", "alpha_attack", "ALPHA_ATTACK", "alpha_statistics"]


_TINY = 1e-12  # guards divisions by a zero change of the outputs


@dataclass(frozen=True, eq=False)  # holds tensors/arrays: compare fields
class AlphaResult(Result):
    """α1, α2 and α12 of one direction ``from_model → to_model``.

    ``alpha2`` and ``alpha12`` are the squared Frobenius norms (the authors' form) when
    ``squared`` is true, else the plain norms; both forms are always in the fields.
    ``per_sample_alpha1`` holds α1(x) for the ``n_used`` samples selected by ``used``
    (a boolean mask over the input samples), in input order.
    """

    alpha1: float
    alpha2_squared: float
    alpha2_unsquared: float
    alpha12_squared: float
    alpha12_unsquared: float
    n_used: int
    per_sample_alpha1: torch.Tensor
    used: torch.Tensor
    squared: bool = True

    @property
    def alpha2(self) -> float:
        return self.alpha2_squared if self.squared else self.alpha2_unsquared

    @property
    def alpha12(self) -> float:
        return self.alpha12_squared if self.squared else self.alpha12_unsquared

    @property
    def alpha1_alpha2(self) -> float:
        """The product α1·α2 (α2 in the chosen form), the paper's combined score."""
        return self.alpha1 * self.alpha2

    def scalars(self) -> dict:
        """The scalar results, for tables."""
        return {"alpha1": self.alpha1, "alpha2": self.alpha2, "alpha12": self.alpha12,
                "alpha1_alpha2": self.alpha1_alpha2, "alpha2_squared": self.alpha2_squared,
                "alpha2_unsquared": self.alpha2_unsquared,
                "alpha12_squared": self.alpha12_squared,
                "alpha12_unsquared": self.alpha12_unsquared, "squared": self.squared,
                "n_used": self.n_used}


#: The authors' attack (Liang et al. 2021): L∞ PGD on the model's own predicted label, random
#: start, ε = 0.1, 50 steps of 0.2·ε (the step rule holds for any ε: Liang et al. run 50
#: steps of "0.2ε-equivalents"; 5 steps cross the ball, 50 cross it 10 times).
ALPHA_ATTACK = AttackSpec("pgd", {"eps": 0.1, "steps": 50, "random_start": True,
                                  "norm": "linf", "use_predictions": True}, seed=0,
                          step="0.2*eps")


def alpha_attack(attack: str | AttackSpec | AttackFactory = "pgd") -> AttackFactory:
    """The attack of α as a factory ``(model) -> attack``: an
    :class:`~transferability.attacks.AttackSpec` (or a registered name) laid over
    :data:`ALPHA_ATTACK`; a factory used as given."""
    if isinstance(attack, str | Mapping | AttackSpec):
        return AttackSpec.of(attack).with_defaults(ALPHA_ATTACK).factory()
    return attack_factory(attack)


def alpha_statistics(d_from_from: torch.Tensor, d_from_to: torch.Tensor,
                     d_to_to: torch.Tensor, used: torch.Tensor | None = None, *,
                     squared: bool = True) -> AlphaResult:
    """α1, α2, α12 from the output changes Δ_{g→g} (N×d_g), Δ_{g→f} and Δ_{f→f} (N×d_f).

    Liang et al. (2021), Def. 1–2, on the rows selected by ``used`` (all by default). The
    mean outer products are one ``einsum`` each (d_g × d_f), computed in float64.
    """
    n = len(d_from_from)
    used = torch.ones(n, dtype=torch.bool) if used is None else used.cpu()
    d_gg, d_gf, d_ff = (d.detach().cpu().double()[used] for d in (d_from_from, d_from_to,
                                                                   d_to_to))
    m = len(d_gg)
    if m == 0:
        raise ValueError("used: selects no samples")
    cross = d_gf.norm(dim=1)
    a1 = cross / d_ff.norm(dim=1).clamp_min(_TINY)
    u = d_gg / d_gg.norm(dim=1, keepdim=True).clamp_min(_TINY)
    w = d_gf / cross[:, None].clamp_min(_TINY)
    m2 = torch.einsum("ni,nj->ij", u, w) / m
    m12 = torch.einsum("n,ni,nj->ij", a1, u, w) / m
    a2, a12 = float(m2.square().sum()), float(m12.square().sum())
    return AlphaResult(alpha1=float(a1.mean()), alpha2_squared=a2, alpha2_unsquared=math.sqrt(a2),
                       alpha12_squared=a12, alpha12_unsquared=math.sqrt(a12), n_used=m,
                       per_sample_alpha1=a1, used=used, squared=bool(squared))


def _outputs(model: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """The model's finite logits on adversarial images (in its own dtype)."""
    return check_finite_outputs(run_model(model, model_inputs(model, x), name), name)


def _used(clean: torch.Tensor, y: torch.Tensor | None, only_correct: bool, names: tuple[str, str]
          ) -> torch.Tensor:
    """Samples the model classifies correctly (all of them without labels or the filter)."""
    model_name, y_name = names
    if y is None:
        return torch.ones(len(clean), dtype=torch.bool)
    y = check_labels_tensor(y, y_name, n=len(clean), num_classes=clean.shape[1])
    if not only_correct:
        return torch.ones(len(clean), dtype=torch.bool)
    used = (clean.argmax(dim=1) == y.to(clean.device)).cpu()
    if not used.any():
        raise ValueError(f"only_correct: {model_name} classifies none of the {len(clean)} "
                         f"samples correctly w.r.t. {y_name}; check that {y_name} uses its "
                         "classes, or pass only_correct=False")
    return used


def _both(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor, y_a, y_b, *,
          names: tuple[str, str, str, str], attack, only_correct: bool,
          squared: bool, batch_size: int) -> tuple[AlphaResult, AlphaResult]:
    """α in both directions from one attack per model (the shared core)."""
    name_a, name_b, name_ya, name_yb = names
    batch_size = check_int(batch_size, "batch_size")
    make_attack = alpha_attack(attack)
    device = check_same_device(**{name_a: model_a, name_b: model_b})
    x = check_images(x, "x")
    if len(x) == 0:
        raise ValueError("x: is an empty batch")
    with evaluating(model_a, model_b), frozen(model_a, model_b):
        clean_a = predict(model_a, x, batch_size=batch_size, name=name_a)
        clean_b = predict(model_b, x, batch_size=batch_size, name=name_b)
        used_a = _used(clean_a, y_a, only_correct, (name_a, name_ya))
        used_b = _used(clean_b, y_b, only_correct, (name_b, name_yb))
        attack_a, attack_b = make_attack(model_a), make_attack(model_b)
        # Every sample is attacked, so a sample's adversarial example never depends on
        # which others are used; each direction then keeps its own samples.
        parts = []
        for i, (xb, ca, cb) in enumerate(batches(x, clean_a, clean_b, batch_size=batch_size)):
            xb = xb.to(device)  # batch i draws from (seed, i), as in attack_reference
            adv_a = attack_batch(attack_a, xb, ca.argmax(dim=1), i).to(device)
            adv_b = attack_batch(attack_b, xb, cb.argmax(dim=1), i).to(device)
            with torch.no_grad():
                out_a = [_outputs(model_a, adv, name_a) for adv in (adv_a, adv_b)]
                out_b = [_outputs(model_b, adv, name_b) for adv in (adv_a, adv_b)]
                parts.append((out_a[0] - ca, out_b[0] - cb, out_a[1] - ca, out_b[1] - cb))
    d_aa, d_ab, d_ba, d_bb = (torch.cat(p) for p in zip(*parts, strict=True))
    return (alpha_statistics(d_aa, d_ab, d_bb, used_a, squared=squared),
            alpha_statistics(d_bb, d_ba, d_aa, used_b, squared=squared))


def alpha(from_model: nn.Module, to_model: nn.Module, x: torch.Tensor,
          y: torch.Tensor | None = None, *, attack: str | AttackSpec | AttackFactory = "pgd",
          only_correct: bool = True, squared: bool = True,
          batch_size: int = 256) -> AlphaResult:
    """α1, α2, α12 of adversarial examples crafted on ``from_model``, shown to ``to_model``.

    Liang et al. (2021), Def. 1–2 (see the module docstring).

    Args:
        x: images N×C×H×W in [0, 1].
        y: labels for ``from_model``; with ``only_correct`` only the samples it classifies
            correctly are used. Without labels every sample is used: the attack targets
            the model's own prediction anyway, as in the authors' code.
        attack: an :class:`~transferability.attacks.AttackSpec` (or a registered name)
            over the authors' defaults (:data:`ALPHA_ATTACK`: L∞ PGD on the predicted label,
            ε = 0.1, 50 steps of 0.2·ε, random start, seed 0), or a factory ``(model) ->
            attack``; the same attack is built for both models.
        squared: report α2 and α12 as squared Frobenius norms (the authors' form).
        batch_size: samples per attack call; results do not depend on it except through
            the attack's random start, which each batch draws from ``seed`` and its position
            (:class:`~transferability.attacks.Attack`'s ``seed``).

    Both models are put in eval mode with frozen parameters, restored afterwards. Raises
    ``ValueError`` for ``eps <= 0``, models on different devices, or no usable samples.
    """
    forward, _ = _both(from_model, to_model, x, y, None,
                       names=("from_model", "to_model", "y", "y"), attack=attack,
                       only_correct=only_correct, squared=squared, batch_size=batch_size)
    return forward


def alpha_both_ways(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor,
                    y_a: torch.Tensor | None = None, y_b: torch.Tensor | None = None, *,
                    attack: str | AttackSpec | AttackFactory = "pgd", only_correct: bool = True,
                    squared: bool = True, batch_size: int = 256
                    ) -> tuple[AlphaResult, AlphaResult]:
    """``(α^{a→b}, α^{b→a})`` from one attack per model, equal to two :func:`alpha` calls.

    Each model's own attack serves both directions (δ_a gives Δ_{a→a} and Δ_{a→b}, δ_b
    gives Δ_{b→b} and Δ_{b→a}): two attacks instead of four. ``y_a`` and ``y_b`` are the
    labels that select each direction's samples (the models may have different classes).
    """
    return _both(model_a, model_b, x, y_a, y_b, names=("model_a", "model_b", "y_a", "y_b"),
                 attack=attack, only_correct=only_correct, squared=squared,
                 batch_size=batch_size)


def attack_reference(from_model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                     attack: str | AttackSpec | AttackFactory = "pgd", only_correct: bool = True,
                     batch_size: int = 256) -> dict[str, torch.Tensor]:
    """The ``from_model`` side of α, shared by every ``to_model``: its clean outputs, the
    samples it classifies correctly, its adversarial examples and Δ_{g→g} (tensors by name,
    what :func:`alpha_to_many` takes as ``attacked``)."""
    batch_size = check_int(batch_size, "batch_size")
    make_attack = alpha_attack(attack)
    x = check_images(x, "x")
    if len(x) == 0:
        raise ValueError("x: is an empty batch")
    device = check_same_device(from_model=from_model)
    with evaluating(from_model), frozen(from_model):
        clean = predict(from_model, x, batch_size=batch_size, name="from_model")
        used = _used(clean, y, only_correct, ("from_model", "y"))
        attack_g = make_attack(from_model)
        adv = torch.cat([attack_batch(attack_g, xb.to(device), cb.argmax(dim=1), i).to(device)
                         for i, (xb, cb) in enumerate(batches(x, clean, batch_size=batch_size))])
        delta = predict(from_model, adv, batch_size=batch_size, name="from_model") - clean
    return {"clean": clean, "used": used, "adv": adv, "delta": delta}


def alpha_to_many(from_model: nn.Module, to_models: Mapping[str, nn.Module], x: torch.Tensor,
                  y: torch.Tensor | None = None, *,
                  attack: str | AttackSpec | AttackFactory = "pgd", only_correct: bool = True,
                  squared: bool = True, batch_size: int = 256, show_progress: bool | None = None,
                  attacked: Mapping[str, torch.Tensor] | None = None
                  ) -> dict[str, AlphaResult]:
    """α^{from→to} for every model in ``to_models``, attacking ``from_model`` only once.

    The study's shape: one reference trained on the target, many sources. Equal to calling
    :func:`alpha` per model, with ``from_model``'s adversarial examples (N images) computed
    once (or given as ``attacked``, from :func:`attack_reference` with the same arguments);
    each ``to_model`` still needs its own attack for Δ_{f→f}.
    """
    from ..utils import progress

    batch_size = check_int(batch_size, "batch_size")
    make_attack = alpha_attack(attack)
    if not isinstance(to_models, Mapping) or not to_models:
        raise ValueError("to_models: expected a non-empty mapping from name to model")
    if attacked is None:
        attacked = attack_reference(from_model, x, y, attack=attack,
                                    only_correct=only_correct, batch_size=batch_size)
    x = check_images(x, "x")
    device = check_same_device(from_model=from_model, **dict(to_models))
    adv_g = attacked["adv"].to(device)
    d_gg, used = attacked["delta"].to(device), attacked["used"]
    results = {}
    for name, model in progress(to_models.items(), total=len(to_models), desc="alpha",
                                enabled=show_progress):
        with evaluating(model), frozen(model):
            clean_f = predict(model, x, batch_size=batch_size, name=name)
            attack_f = make_attack(model)
            d_gf, d_ff = [], []
            for i, (xb, ab, cf) in enumerate(batches(x, adv_g, clean_f, batch_size=batch_size)):
                adv_f = attack_batch(attack_f, xb.to(device), cf.argmax(dim=1), i).to(device)
                with torch.no_grad():
                    d_gf.append(_outputs(model, ab, name) - cf)
                    d_ff.append(_outputs(model, adv_f, name) - cf)
        results[name] = alpha_statistics(d_gg, torch.cat(d_gf), torch.cat(d_ff), used,
                                         squared=squared)
    return results
