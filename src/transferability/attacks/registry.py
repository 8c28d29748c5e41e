"""The attack registry (timm-style): each attack registers itself in its own file, with what
callers need to know about it on its entry (:class:`AttackInfo`); ``create_attack(name,
model, **kw)``, ``list_attacks()`` and ``attack_info(name)`` read it.

A **preset** is a registered attack that is another one with fixed options and transforms,
declared as data (:func:`register_preset`): ``bim`` is ``pgd`` without the random start,
``di`` is ``pgd`` with DI's input transform, ``si`` is ``nifgsm`` with SI's. A preset's
transform is built from its own keywords (``copies=``, ``p=``...), followed by each transform
it names in ``also`` whose keywords are given (DI, for ``si``, ``admix``, ``sia``, ``bsr``) and
by the caller's own ``input_transform``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from .._registry import Registry
from .base import Attack, Compose

__all__ = ["AttackInfo", "register_attack", "register_preset", "create_attack",
           "list_attacks", "attack_info", "AttackFactory"]

_ATTACKS = Registry("attack")

#: The options of an iterative attack: an attack that takes no steps refuses them when
#: given, and leaves them out of the defaults laid under it.
STEP_OPTIONS = ("steps", "alpha", "random_start")


@dataclass(frozen=True)
class AttackInfo:
    """One registered attack: ``build(model, **kw) -> Attack`` and what callers need to
    know without building it: a one-line ``summary`` (with its paper); ``takes_steps``
    (False: one step of size ε, no ``steps``/``alpha``); ``needs_ensemble`` (its model
    must be an :class:`~transferability.models.Ensemble`); ``randomized`` (it draws random
    numbers: a seed makes it repeatable); ``grads_per_step`` (gradient evaluations per
    iteration at its defaults; 0 for a score-based attack, None when it varies);
    ``quick``: options that make it cheap (few samples or copies: tests, smoke runs);
    ``base`` and ``fixed`` for a preset."""

    name: str
    build: Callable[..., Attack]
    summary: str
    takes_steps: bool = True
    needs_ensemble: bool = False
    randomized: bool = False
    grads_per_step: int | None = 1
    quick: Mapping = field(default_factory=dict)
    base: str | None = None
    fixed: Mapping = field(default_factory=dict)

    def describe(self) -> str:
        """``name: summary`` for listings and help texts."""
        return f"{self.name}: {self.summary}"


def register_attack(name: str, *, summary: str | None = None, **info):
    """Decorator: register the attack class (or factory ``(model, **kw) -> Attack``) as
    ``name``, with its :class:`AttackInfo` (``summary`` defaults to the first line of its
    module's docstring)."""
    def add(build):
        text = summary or (sys.modules[build.__module__].__doc__ or name).strip().splitlines()[0]
        _ATTACKS.register(name, AttackInfo(name, build, text, **info))
        return build
    return add


def register_preset(name: str, base: type, *, summary: str, fixed: Mapping | None = None,
                    transform: type | None = None, also: tuple[type, ...] = (),
                    own_transform: bool = False, gradient_transform: type | None = None,
                    **info) -> AttackInfo:
    """Register ``name`` as the registered attack class ``base`` with ``fixed`` options, an
    ``input_transform`` of class ``transform`` (followed by each of ``also`` whose keywords
    are given, then by the caller's own ``input_transform``, which ``own_transform``
    refuses) or a ``gradient_transform`` of class ``gradient_transform``, each built from
    its own keywords; the other entries of ``info`` as in :class:`AttackInfo` (default: the
    base's)."""
    parent = next((e for e in _ATTACKS.values() if e.build is base), None)
    if parent is None:
        raise ValueError(f"base: {base!r} is not a registered attack class")
    fixed = MappingProxyType(dict(fixed or {}))

    def build(model: nn.Module, **kwargs) -> Attack:
        kwargs = dict(kwargs)
        if transform is not None:
            kwargs = _with_transform(kwargs, transform, also, own_transform, name)
        if gradient_transform is not None:
            kwargs["gradient_transform"] = gradient_transform(**_own(kwargs, gradient_transform))
        return parent.build(model, **{**kwargs, **fixed})

    inherited = {k: getattr(parent, k) for k in ("takes_steps", "needs_ensemble", "randomized",
                                                 "grads_per_step", "quick")}
    entry = AttackInfo(name, build, summary, **{**inherited, **info}, base=parent.name,
                       fixed=fixed)
    return _ATTACKS.register(name, entry)


def list_attacks() -> list[str]:
    """Names accepted by :func:`create_attack`."""
    return _ATTACKS.names()


def attack_info(name: str, argument: str = "attack") -> AttackInfo:
    """The registry entry of ``name``; an unknown name is refused with the choices."""
    return _ATTACKS.get(name, argument)


def create_attack(name: str, model: nn.Module, **kwargs) -> Attack:
    """Build a registered attack, e.g. ``create_attack("pgd", model, eps=0.1, steps=20)``."""
    build = attack_info(name).build
    try:
        return build(model, **kwargs)
    except TypeError as exc:
        raise ValueError(f"attack: cannot build {name!r} with {sorted(kwargs)}: "
                         f"{str(exc).split('() ')[-1]}") from None


#: Builds the attack for one model; the attack is called as ``attack(x, y)`` and returns
#: ``x_adv`` (a torchattacks attack works too).
AttackFactory = Callable[[nn.Module], Callable]


def _own(kwargs: dict, cls) -> dict:
    """Pop the keywords of ``cls.__init__`` out of ``kwargs``."""
    names = inspect.signature(cls).parameters
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}


def _with_transform(kwargs: dict, cls, also: tuple, own: bool, name: str) -> dict:
    """An ``input_transform`` of ``cls`` built from its keywords, followed by each of
    ``also`` whose keywords are given and by the caller's own ``input_transform``."""
    steps = [cls(**_own(kwargs, cls))]
    for extra in also:
        if set(inspect.signature(extra).parameters) & set(kwargs):
            steps.append(extra(**_own(kwargs, extra)))
    if kwargs.get("input_transform") is not None:
        if own:
            raise ValueError(f"input_transform: {name} sets it itself; use its base attack "
                             "with input_transform=... instead")
        steps.append(kwargs.pop("input_transform"))
    return {**kwargs, "input_transform": steps[0] if len(steps) == 1 else Compose(steps)}
