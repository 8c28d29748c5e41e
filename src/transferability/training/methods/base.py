"""Training methods: what one optimisation step does, as small registered classes.

A method gives :func:`~transferability.training.fit` its ``loss(model, x, y)`` and its
``step(model, optimizer, closure)``; ``closure()`` zeroes the gradients, computes
``loss``, back-propagates and returns the loss, so a two-pass update such as SAM is a
``step``. ``config()`` is what enters a zoo's cache key: the method's name and every option,
defaults included, so two spellings of one configuration share a cache entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..._registry import Registry

__all__ = ["TrainingMethod", "register_training_method", "create_training_method",
           "list_training_methods"]

_METHODS = Registry("training method")


class TrainingMethod:
    """Plain SGD-style training on cross-entropy; subclasses override :meth:`loss`,
    :meth:`step` and the hooks. ``options`` holds the checked options (see :meth:`config`).

    ``default_schedule`` (``None``: fit's own default) lets a method ask for its schedule,
    as LGV asks for a constant learning rate.
    """

    name: ClassVar[str] = "sgd"
    default_schedule: ClassVar[str | None] = None

    def __init__(self, **options):
        if options:
            raise ValueError(f"{sorted(options)[0]}: unknown training option (not an option "
                             f"of method {self.name!r})")
        self.options: dict = {}

    def config(self) -> dict:
        return {"method": self.name, **self.options}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({args})"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer,
             closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        loss = closure()
        optimizer.step()
        return loss

    def on_train_begin(self, model: nn.Module, steps_per_epoch: int) -> None:
        """Called once before the first step."""

    def on_step_end(self, model: nn.Module, epoch: int, step_in_epoch: int) -> None:
        """Called after every optimizer step (``epoch`` 1-based, ``step_in_epoch`` 0-based)."""

    def result(self) -> dict:
        """What the method produced besides the trained weights (e.g. LGV's members)."""
        return {}


def register_training_method(name: str):
    """Class decorator: make a :class:`TrainingMethod` available as ``method=name``."""
    def add(cls):
        cls.name = name
        return _METHODS.register(name, cls)
    return add


def list_training_methods() -> list[str]:
    """Names accepted by ``fit(method=...)``, sorted."""
    return _METHODS.names()


def create_training_method(method: str | TrainingMethod, **options) -> TrainingMethod:
    """A method instance from a name and its options (an instance is returned as given)."""
    if isinstance(method, TrainingMethod):
        if options:
            raise ValueError(f"method: options {sorted(options)} only go with a method name")
        return method
    return _METHODS.get(method, "method")(**options)


register_training_method("sgd")(TrainingMethod)
