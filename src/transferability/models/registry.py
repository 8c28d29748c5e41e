"""Model registry in the style of timm: ``create_model(name, ...)`` and ``list_models()``."""

from __future__ import annotations

import inspect

from torch import nn

from .._registry import Registry
from .._validation import check_int

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
    num_classes = check_int(num_classes, "num_classes")
    in_channels = check_int(in_channels, "in_channels")
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        options = [k for k in accepted if k not in ("num_classes", "in_channels")]
        raise ValueError(f"arch_kwargs: {name!r} does not take {unknown}; it takes {options}")
    try:
        model = factory(num_classes=num_classes, in_channels=in_channels, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"arch_kwargs: cannot build {name!r} with {kwargs}: "
                         f"{str(exc).splitlines()[0]}") from None
    model.meta = {"arch": name, "num_classes": int(num_classes),
                  "in_channels": int(in_channels), "arch_kwargs": dict(kwargs)}
    return model
