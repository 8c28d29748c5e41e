"""Training methods, registered by name: ``sgd``, ``sam``, ``lsam``, ``lgv``,
``gradient_alignment_penalty``, ``pgd_at`` and ``cartl_fdm`` (see each module)."""

from .adversarial import (
    ChanceAccuracyWarning,
    FeatureDistanceMinimisation,
    PGDAdversarialTraining,
)
from .base import (
    TrainingMethod,
    create_training_method,
    list_training_methods,
    register_training_method,
)
from .gradient_alignment import GradientAlignmentPenalty, ModelPair, alignment_penalty
from .lgv import LGV, lgv_members
from .sam import LSAM, LSAM_RHO, SAM

__all__ = ["TrainingMethod", "create_training_method", "list_training_methods",
           "register_training_method", "SAM", "LSAM", "LSAM_RHO", "LGV", "lgv_members",
           "GradientAlignmentPenalty", "ModelPair", "alignment_penalty",
           "PGDAdversarialTraining", "FeatureDistanceMinimisation", "ChanceAccuracyWarning"]
