"""Registry of transferability estimators, keyed by name, each declaring the input it needs.

An estimator of kind ``"probs"``, ``"source_labels"`` or ``"features"`` takes that input and
the target labels, so :func:`score` can run any of them on the
:class:`~transferability.features.Outputs` of one extraction pass. Kind ``"models"`` is for
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

__all__ = ["KINDS", "Estimator", "register_estimator", "get_estimator", "list_estimators",
           "score"]

_FROM_OUTPUTS: dict[str, Callable[[Outputs], torch.Tensor]] = {
    "probs": lambda o: o.probs,  # source softmax θ(x)
    "source_labels": lambda o: o.logits.argmax(dim=1),  # source prediction z = argmax θ(x)
    "features": lambda o: o.features,  # penultimate features f(x)
}
KINDS: tuple[str, ...] = (*_FROM_OUTPUTS, "models")


@dataclass(frozen=True)
class Estimator:
    """A registered estimator: ``fn(input, target_labels, **kw) -> float``, higher = better."""

    name: str
    fn: Callable[..., float]
    kind: str

    def __call__(self, *args, **kwargs) -> float:
        return self.fn(*args, **kwargs)


_ESTIMATORS = Registry("estimator")


def register_estimator(name: str, *, kind: str) -> Callable[[Callable[..., float]],
                                                          Callable[..., float]]:
    """Decorator registering ``fn`` under ``name``; ``kind`` says which input it takes."""
    check_choice(kind, "kind", KINDS)

    def decorate(fn: Callable[..., float]) -> Callable[..., float]:
        if name in _ESTIMATORS and _ESTIMATORS.get(name).fn is fn:
            return fn
        _ESTIMATORS.register(name, Estimator(name, fn, kind))
        return fn

    return decorate


def get_estimator(name: str) -> Estimator:
    """The estimator registered as ``name`` (the error lists the known names)."""
    return _ESTIMATORS.get(name)


def list_estimators(kind: str | None = None) -> list[str]:
    """Registered names, sorted, optionally only those of one ``kind``."""
    if kind is not None:
        check_choice(kind, "kind", KINDS)
    return [n for n in _ESTIMATORS.names() if kind is None or _ESTIMATORS.get(n).kind == kind]


def score(name: str, outputs: Outputs, target_labels, **kwargs) -> float:
    """Run estimator ``name`` on the input it needs, taken from one extraction's ``outputs``."""
    est = get_estimator(name)
    if est.kind not in _FROM_OUTPUTS:
        raise ValueError(f"name: estimator {name!r} needs {est.kind}, not extracted outputs; "
                         "call get_estimator(name) with its own arguments")
    return est(_FROM_OUTPUTS[est.kind](outputs), target_labels, **kwargs)
