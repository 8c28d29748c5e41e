"""Training: one loop (:func:`fit`), registered training methods, callbacks.

Methods: ``sgd``; ``sam`` (Foret et al. 2021, ASAM with ``adaptive=True``); ``lsam``
(large-ρ SAM, Gubri et al. 2023); ``lgv`` (Gubri et al. 2022); ``gradient_alignment_penalty``
(Adam et al. 2019, on a :class:`ModelPair`); ``pgd_at`` (Madry et al. 2018); ``cartl_fdm``
(Chen et al. 2021). Callbacks: :class:`EarlyStopping`,
:class:`Snapshot`.
"""

from .callbacks import Callback, EarlyStopping, Snapshot
from .loop import FIT_OPTIONS, SCHEDULES, History, check_fit_options, evaluate, fit
from .methods import (
    LGV,
    LSAM,
    LSAM_RHO,
    SAM,
    ChanceAccuracyWarning,
    FeatureDistanceMinimisation,
    GradientAlignmentPenalty,
    ModelPair,
    PGDAdversarialTraining,
    TrainingMethod,
    alignment_penalty,
    create_training_method,
    lgv_members,
    list_training_methods,
    register_training_method,
)

__all__ = [
    "fit", "evaluate", "History", "FIT_OPTIONS", "SCHEDULES", "check_fit_options",
    "Callback", "EarlyStopping", "Snapshot",
    "TrainingMethod", "create_training_method", "list_training_methods",
    "register_training_method", "SAM", "LSAM", "LSAM_RHO", "LGV", "lgv_members",
    "GradientAlignmentPenalty", "ModelPair", "alignment_penalty", "PGDAdversarialTraining",
    "FeatureDistanceMinimisation", "ChanceAccuracyWarning",
]
