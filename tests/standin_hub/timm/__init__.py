"""Stand-in for timm: ``create_model``, ``is_model``, ``models.get_pretrained_cfg``,
``data.resolve_model_data_config`` / ``data.create_transform`` and networks offering
``forward_features`` / ``forward_head(x, pre_logits=True)``. Tiny and deterministic."""

from . import data, models
from .models import create_model, is_model, list_models

__all__ = ["create_model", "is_model", "list_models", "data", "models"]
