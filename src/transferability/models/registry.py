"""Model registry in the style of timm: ``create_model(name, ...)`` and ``list_models()``."""

from __future__ import annotations

from torch import nn

from .._registry import Registry

__all__ = ["register_model", "create_model", "list_models"]

_MODELS = Registry("model")


def register_model(name: str):
    """Decorator: make a model factory available to :func:`create_model` under ``name``."""
    return _MODELS.register(name)


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return _MODELS.names()


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    """Build a registered architecture, e.g. ``create_model("resnet", num_classes=10)``.

    The model's ``meta`` records ``arch``, ``num_classes``, ``in_channels`` and
    ``arch_kwargs``, so :func:`~transferability.models.save_checkpoint` can rebuild it.
    """
    factory = _MODELS.get(name)
    if int(num_classes) < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    if int(in_channels) < 1:
        raise ValueError(f"in_channels: expected a positive integer, got {in_channels!r}")
    model = factory(num_classes=int(num_classes), in_channels=int(in_channels), **kwargs)
    model.meta = {"arch": name, "num_classes": int(num_classes),
                  "in_channels": int(in_channels), "arch_kwargs": dict(kwargs)}
    return model
