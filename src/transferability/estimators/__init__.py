"""Knowledge-transferability estimators: cheap scores of how well a source model will serve a
target task, higher = more transferable.

Each takes NumPy or torch inputs, computes in float64 and returns a finite Python float (or
raises a ``ValueError`` naming the bad argument). Class labels are ``target_labels``; LogME
also takes regression targets as ``target_values``. Every estimator is registered by name with
the input it needs (``"probs"``, ``"source_labels"``, ``"features"``), so
``score(name, outputs, target_labels)`` runs any of them on one
:func:`transferability.features.extract` pass.
"""

from __future__ import annotations

from .etran import etran, etran_terms
from .gbc import gbc
from .hscore import HScore, h_score
from .knn import knn_accuracy
from .leep import LEEP, leep
from .logme import LogME, logme
from .nce import NCE, nce, task_hardness
from .ncti import ncti, ncti_across, ncti_terms
from .nleep import mixture_posteriors, nleep
from .parc import parc
from .registry import (
    INPUTS,
    Estimator,
    check_estimator_data,
    get_estimator,
    list_estimators,
    register_estimator,
    score,
)
from .sfda import sfda
from .transrate import transrate

__all__ = [
    "leep", "LEEP", "nce", "NCE", "task_hardness", "h_score", "HScore", "logme", "LogME",
    "transrate", "INPUTS", "Estimator", "check_estimator_data", "get_estimator",
    "list_estimators", "register_estimator",
    "score", "nleep", "mixture_posteriors", "sfda", "parc", "gbc", "knn_accuracy", "etran",
    "etran_terms", "ncti", "ncti_terms", "ncti_across",
]
