"""Registry of transferability estimators, keyed by name, each declaring the input it needs.

An estimator's ``inputs`` say what it takes: ``"probs"``, ``"source_labels"`` or
``"features"`` (with the target labels), so :func:`score` can run any of them on the
:class:`~transferability.features.Outputs` of one extraction pass; ``"models"`` is for
scores that need the models themselves (adversarial transferability); they are called
directly with their own arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._registry import Registry
from .._validation import check_choice

if TYPE_CHECKING:
    import torch

    from ..features import Outputs

__all__ = ["INPUTS", "Estimator", "register_estimator", "get_estimator", "list_estimators",
           "score", "check_estimator_data"]

_FROM_OUTPUTS: dict[str, Callable[[Outputs], torch.Tensor]] = {
    "probs": lambda o: o.probs,  # source softmax θ(x)
    "source_labels": lambda o: o.logits.argmax(dim=1),  # source prediction z = argmax θ(x)
    "features": lambda o: o.features,  # penultimate features f(x)
}
#: What an estimator may take (its ``inputs``).
INPUTS: tuple[str, ...] = (*_FROM_OUTPUTS, "models")


@dataclass(frozen=True)
class Estimator:
    """A registered estimator: ``fn(input, target_labels, **kw) -> float``, higher = better;
    ``inputs``: what it takes (one of :data:`INPUTS`); ``min_per_class``: the fewest target
    samples per class it is defined for."""

    name: str
    fn: Callable[..., float]
    inputs: str
    min_per_class: int = 1

    def __call__(self, *args, **kwargs) -> float:
        """``fn``; one on arrays runs under a thread limit for its input's size
        (:func:`~transferability._threads.limit_threads`)."""
        if self.inputs == "models" or not args:
            return self.fn(*args, **kwargs)
        from .._threads import limit_threads

        data = args[0]
        size = data.numel() if hasattr(data, "numel") else getattr(data, "size", 0)
        with limit_threads(size if isinstance(size, int) else 0):
            return self.fn(*args, **kwargs)


_ESTIMATORS = Registry("estimator")


def register_estimator(name: str, *, inputs: str, min_per_class: int = 1
                       ) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator registering ``fn`` under ``name``; ``inputs`` says what it takes (one of
    :data:`INPUTS`) and ``min_per_class`` how many target samples per class it needs at least."""
    check_choice(inputs, "inputs", INPUTS)

    def decorate(fn: Callable[..., float]) -> Callable[..., float]:
        if name in _ESTIMATORS and _ESTIMATORS.get(name).fn is fn:
            return fn
        _ESTIMATORS.register(name, Estimator(name, fn, inputs, min_per_class))
        return fn

    return decorate


def get_estimator(name: str) -> Estimator:
    """The estimator registered as ``name`` (the error lists the known names)."""
    return _ESTIMATORS.get(name)


def list_estimators(inputs: str | None = None) -> list[str]:
    """Registered names, sorted, optionally only those that take ``inputs``."""
    if inputs is not None:
        check_choice(inputs, "inputs", INPUTS)
    return [n for n in _ESTIMATORS.names()
            if inputs is None or _ESTIMATORS.get(n).inputs == inputs]


def score(name: str, outputs: Outputs, target_labels, **kwargs) -> float:
    """Run estimator ``name`` on the input it needs, taken from one extraction's ``outputs``."""
    est = get_estimator(name)
    if est.inputs not in _FROM_OUTPUTS:
        raise ValueError(f"name: estimator {name!r} needs {est.inputs}, not extracted outputs; "
                         "call get_estimator(name) with its own arguments")
    return est(_FROM_OUTPUTS[est.inputs](outputs), target_labels, **kwargs)


def check_estimator_data(names, class_counts, name: str = "target") -> None:
    """Before any model runs: every estimator in ``names`` is defined on a target whose
    classes have ``class_counts`` samples (a tiny target is refused up front, not by a job)."""
    import numpy as np

    counts = np.asarray(class_counts)
    if counts.sum() <= len(counts):
        raise ValueError(f"{name}: {int(counts.sum())} samples for {len(counts)} classes; the "
                         "estimators need more samples than classes")
    smallest = int(counts.min())
    short = [n for n in names if get_estimator(n).min_per_class > smallest]
    if short:
        need = max(get_estimator(n).min_per_class for n in short)
        raise ValueError(f"{name}: its smallest class has {smallest} sample(s); "
                         f"{', '.join(short)} need(s) at least {need} per class: use more "
                         "target data or leave those estimators out")
