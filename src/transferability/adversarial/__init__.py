"""Adversarial transferability and its link to knowledge transferability (Liang et al. 2021).

- :func:`alpha`, :func:`alpha_both_ways`: α1, α2, α12 of Liang et al. (ICML 2021);
- :func:`gradient_alignment`: input-gradient cosine of two models (Adam et al. 2019);
- :func:`attribution_affinity`, :func:`attribution_maps`: Song et al. (NeurIPS 2019);
- :func:`affine_fit_loss`, :func:`fit_affine`: the closed-form affine-fit knowledge metric;
- :func:`theory_check`: the authors' synthetic experiment with exact Jacobians.

This package registers α1, α2, α12, α1·α2, gradient alignment and attribution affinity as
estimators of ``inputs="models"`` (see :mod:`.scores`); importing ``transferability`` does it.
"""

from .affine import AffineMap, affine_fit_loss, as_targets, fit_affine
from .alignment import AlignmentResult, gradient_alignment, loss_gradients
from .alpha import (
    ALPHA_ATTACK,
    AlphaResult,
    AttackFactory,
    alpha,
    alpha_attack,
    alpha_both_ways,
    alpha_statistics,
    alpha_to_many,
    attack_reference,
)
from .attribution import ATTRIBUTIONS, AffinityResult, attribution_affinity, attribution_maps
from .scores import ALPHA_SCORES, MODEL_SCORES, adversarial_scores, model_scores
from .theory import (
    TheoryRow,
    jacobians,
    linearized_alpha,
    perturb_weights,
    synthetic_target,
    theory_check,
)

__all__ = [
    "AlphaResult", "AttackFactory", "alpha", "alpha_both_ways", "alpha_to_many",
    "attack_reference", "alpha_attack",
    "ALPHA_ATTACK", "alpha_statistics",
    "AlignmentResult", "gradient_alignment", "loss_gradients",
    "ATTRIBUTIONS", "AffinityResult", "attribution_affinity", "attribution_maps",
    "AffineMap", "affine_fit_loss", "fit_affine", "as_targets",
    "TheoryRow", "jacobians", "linearized_alpha", "perturb_weights", "synthetic_target",
    "theory_check",
    "ALPHA_SCORES", "MODEL_SCORES", "adversarial_scores", "model_scores",
]
