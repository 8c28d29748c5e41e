"""Model registry in the style of timm: ``create_model(name, ...)`` and ``list_models()``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "create_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make a model factory available to :func:`create_model` under ``name``."""
    def decorator(fn):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = fn
        return fn
    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_MODELS)


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    """Build a registered architecture, e.g. ``create_model("resnet", num_classes=10)``.

    The model's ``meta`` records ``arch``, ``num_classes``, ``in_channels`` and
    ``arch_kwargs``, so :func:`~transferability.models.save_checkpoint` can rebuild it.
    """
    if name not in _MODELS:
        raise ValueError(f"name: unknown model {name!r}; available: {', '.join(list_models())}")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    if int(in_channels) < 1:
        raise ValueError(f"in_channels: expected a positive integer, got {in_channels!r}")
    model = _MODELS[name](num_classes=int(num_classes), in_channels=int(in_channels), **kwargs)
    model.meta = {"arch": name, "num_classes": int(num_classes),
                  "in_channels": int(in_channels), "arch_kwargs": dict(kwargs)}
    return model
