"""The adversarial scores as estimators of ``inputs="models"`` (for ``transferability rank``).

A ``"models"`` estimator is called as ``fn(reference, source, x, y=None, **options) ->
float``, higher = more transferable; the models come in the order of the attack, like
``alpha(from_model, to_model, ...)``. The reference is trained on the target task; as in
Liang et al. (2021), knowledge transfer from the source to the target is indicated by
α^{T→S}: attacks crafted on the reference, shown to the source. ``x, y`` are target images
and labels; ``y`` selects the samples the reference classifies correctly.

Each α estimator runs both attacks; to get several α scores from one run use
:func:`model_scores`, which computes :func:`~transferability.adversarial.alpha` once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .._validation import check_choice
from ..estimators.registry import get_estimator, list_estimators, register_estimator
from .alignment import gradient_alignment
from .alpha import alpha, alpha_to_many
from .attribution import attribution_affinity

__all__ = ["ALPHA_SCORES", "MODEL_SCORES", "adversarial_scores", "model_scores"]

#: registered α scores and the :class:`AlphaResult` attribute each one reads
ALPHA_SCORES = {"alpha1": "alpha1", "alpha2": "alpha2", "alpha12": "alpha12",
                "alpha1_alpha2": "alpha1_alpha2"}
MODEL_SCORES = (*ALPHA_SCORES, "gradient_alignment", "attribution_affinity")


def _register_alpha(name: str, field: str) -> None:
    def score(reference: nn.Module, source: nn.Module, x: torch.Tensor,
              y: torch.Tensor | None = None, **options) -> float:
        return getattr(alpha(reference, source, x, y, **options), field)

    score.__name__ = f"{name}_score"
    score.__doc__ = (f"``alpha(reference, source, x, y).{field}``: α^{{T→S}} of "
                     "Liang et al. (2021), Def. 1–2.")
    register_estimator(name, inputs="models")(score)


for _name, _field in ALPHA_SCORES.items():
    _register_alpha(_name, _field)


@register_estimator("gradient_alignment", inputs="models")
def gradient_alignment_score(reference: nn.Module, source: nn.Module, x: torch.Tensor,
                             y=None, *, batch_size: int = 256) -> float:
    """Mean gradient cosine (Adam et al. 2019), each model's loss on its own prediction
    (the source's classes differ from the target's, so ``y`` is not used)."""
    return gradient_alignment(reference, source, x, batch_size=batch_size).mean


@register_estimator("attribution_affinity", inputs="models")
def attribution_affinity_score(reference: nn.Module, source: nn.Module, x: torch.Tensor,
                               y=None, *, attribution: str = "saliency",
                               batch_size: int = 256) -> float:
    """Mean attribution-map cosine (Song et al. 2019); needs no labels."""
    return attribution_affinity(reference, source, x, attribution, batch_size=batch_size).mean


def adversarial_scores(reference: nn.Module, sources: Mapping[str, nn.Module], x: torch.Tensor,
                       y: torch.Tensor | None = None, *, names: Iterable[str] = MODEL_SCORES,
                       attack="pgd", attribution: str = "saliency", batch_size: int = 256,
                       show_progress: bool | None = None, attacked: dict | None = None
                       ) -> dict[str, dict[str, float]]:
    """``"models"`` scores of every source against one reference: ``{source: {name: score}}``.

    α runs once for all α names, and the reference is attacked once for all sources
    (:func:`~transferability.adversarial.alpha_to_many`) with ``attack`` (see
    :func:`~transferability.adversarial.alpha_attack`);
    ``attribution`` (``"saliency"`` or ``"grad_input"``) is the attribution affinity's
    map; ``attacked`` is the reference's side of α when it is already computed
    (:func:`~transferability.adversarial.attack_reference`). Names registered by others
    are called with ``batch_size`` only.
    """
    names = [check_choice(n, "names", list_estimators("models")) for n in names]
    scores: dict[str, dict[str, float]] = {s: {} for s in sources}
    if any(n in ALPHA_SCORES for n in names):
        alphas = alpha_to_many(reference, sources, x, y, attack=attack, batch_size=batch_size,
                               show_progress=show_progress, attacked=attacked)
    for source_name, source in sources.items():
        row = scores[source_name]
        for name in names:
            if name in ALPHA_SCORES:
                row[name] = float(getattr(alphas[source_name], ALPHA_SCORES[name]))
            elif name == "attribution_affinity":
                row[name] = attribution_affinity_score(reference, source, x,
                                                       attribution=attribution,
                                                       batch_size=batch_size)
            else:
                row[name] = float(get_estimator(name)(reference, source, x, y,
                                                      batch_size=batch_size))
    return scores


def model_scores(reference: nn.Module, source: nn.Module, x: torch.Tensor,
                 y: torch.Tensor | None = None, **options) -> dict[str, float]:
    """:func:`adversarial_scores` of one reference/source pair."""
    return adversarial_scores(reference, {"source": source}, x, y, **options)["source"]
