"""Model zoo: registry, the :class:`Classifier` shape, ensembles, and safe checkpoints."""

from . import architectures as _architectures  # noqa: F401  (registers the models)
from .checkpoint import (
    CheckpointError,
    checkpoint_bytes,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from .classifier import Classifier, Normalize, check_classifier, replace_head
from .ensemble import COMBINES, Ensemble
from .registry import create_model, list_models, register_model

__all__ = [
    "Classifier", "Normalize", "check_classifier", "replace_head", "Ensemble", "COMBINES",
    "create_model", "list_models", "register_model",
    "save_checkpoint", "checkpoint_bytes", "load_checkpoint", "read_metadata", "CheckpointError",
]
