"""Stand-in for torchvision: ``models.list_models``, ``get_model_weights``, ``get_model``."""

from . import models

__all__ = ["models"]
