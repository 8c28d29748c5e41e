"""One attack as data: :class:`AttackSpec` (a registered name, its options and a seed).

Everything that attacks on behalf of a caller (the command line, the studies,
:func:`~transferability.attacks.robust_accuracy`, the training methods ``pgd_at`` and
``cartl_fdm``, the α attack) holds its attack as a spec: the name and the options are
checked once, when the spec is made, by one rule for ``eps``
(:func:`~transferability._validation.check_eps`); the caller's defaults are overlaid once,
by :meth:`AttackSpec.with_defaults`; the attack is built through the registry, by
:meth:`AttackSpec.create`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from .._validation import Constraint, check_eps, check_seed
from .base import Attack
from .registry import _ATTACKS, STEP_OPTIONS, AttackFactory, attack_info, create_attack

__all__ = ["AttackSpec", "AttackRule", "attack_factory"]


#: A step-size rule: ``eps/10``, ``0.2*eps``, ``2.5*eps/steps``.
_STEP = re.compile(r"(?:(?P<times>[0-9.]+)\*)?eps(?:/(?P<over>[0-9.]+|steps))?")


def step_size(rule: str, eps: float, steps: int | None) -> float:
    """The step size that ``rule`` gives for ``eps`` and ``steps`` (evaluated left to
    right: ``0.2*eps`` is ``0.2 * eps``, ``eps/10`` is ``eps / 10``)."""
    match = _STEP.fullmatch(rule)
    value = eps if match["times"] is None else float(match["times"]) * eps
    if match["over"] == "steps":
        return value / steps
    return value if match["over"] is None else value / float(match["over"])


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack ``name`` with ``options`` (the attack class's own keywords, e.g.
    ``eps``, ``steps``, ``alpha``), a ``seed`` (None: the attack's own) and a ``step``
    rule for the step size when the options give none (``"eps/10"``, ``"0.2*eps"``; None:
    the attack's own default, e.g. PGD's ``2.5*eps/steps``).

    Made once, checked once: an unknown name, options that are not a dict, an ``eps``
    that is not > 0, a step rule that does not parse and step options given to an attack
    that takes no steps (:attr:`~transferability.attacks.AttackInfo.takes_steps`) are
    refused here, before any model is attacked. A ``seed`` among the options becomes the
    spec's ``seed``. ``AttackSpec.of(value)`` reads a spec, a name or a ``to_dict()``;
    ``with_defaults(defaults)`` lays the spec over a caller's defaults; ``with_options(
    **options)`` over the spec's own; ``create(model)`` builds the attack (registry);
    ``factory()`` the ``(model) -> attack`` of code that attacks several models;
    ``kwargs`` are the keywords the attack is built with; ``to_dict()`` a JSON-ready copy.
    """

    name: str
    options: Mapping = field(default_factory=dict)
    seed: int | None = None
    step: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ValueError(f"attack: expected an attack name, got {self.name!r}")
        if self.name not in _ATTACKS:
            raise ValueError(f"attack: unknown attack {self.name!r}; available: "
                             f"{', '.join(_ATTACKS.names())}")
        if not isinstance(self.options, Mapping):
            raise ValueError(f"options: expected a dict of the attack's options, got "
                             f"{type(self.options).__name__}")
        options = dict(self.options)
        seed = options.pop("seed", None) if self.seed is None else self.seed
        options.pop("seed", None)
        if "eps" in options:
            options["eps"] = check_eps(options["eps"])
        if not attack_info(self.name).takes_steps and set(STEP_OPTIONS) & set(options):
            given = sorted(set(STEP_OPTIONS) & set(options))
            raise ValueError(f"{', '.join(given)}: {self.name} takes one step of size eps; "
                             "use bim or pgd for iterations")
        if self.step is not None and (not isinstance(self.step, str)
                                      or not _STEP.fullmatch(self.step)):
            raise ValueError(f"step: expected a step-size rule such as 'eps/10' or "
                             f"'0.2*eps', got {self.step!r}")
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "seed", None if seed is None else check_seed(seed))

    @classmethod
    def of(cls, value) -> AttackSpec:
        """``value`` as a spec: a spec as it is, a registered name, or a ``to_dict()``."""
        if isinstance(value, AttackSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"name", "options", "seed", "step"})
            if unknown or "name" not in value:
                raise ValueError(f"attack: expected a spec's dict (name, options, seed, "
                                 f"step), got keys {sorted(value)}")
            return cls(**value)
        raise ValueError(f"attack: expected an AttackSpec or an attack name, got {value!r}")

    def with_defaults(self, defaults: Mapping | AttackSpec) -> AttackSpec:
        """This spec over a caller's ``defaults`` (options, maybe with a ``seed``, or the
        options, seed and step rule of another spec): what this spec gives wins. Defaults
        an attack cannot take (the step options of one that takes no steps) are left out."""
        step = self.step
        if isinstance(defaults, AttackSpec):
            step = step or defaults.step
            defaults = {**({} if defaults.seed is None else {"seed": defaults.seed}),
                        **defaults.options}
        if not attack_info(self.name).takes_steps:
            defaults = {k: v for k, v in defaults.items() if k not in STEP_OPTIONS}
            step = None
        return AttackSpec(self.name, {**defaults, **self.options}, self.seed, step)

    def with_options(self, **options) -> AttackSpec:
        """This spec with ``options`` over its own."""
        return AttackSpec(self.name, {**self.options, **options}, self.seed, self.step)

    @property
    def kwargs(self) -> dict:
        """The keywords the attack is built with: the seed (when set), then the options,
        with the step size of the ``step`` rule when they give none."""
        options = dict(self.options)
        if self.step is not None and "alpha" not in options and "eps" in options:
            options["alpha"] = step_size(self.step, options["eps"], options.get("steps"))
        return {**({} if self.seed is None else {"seed": self.seed}), **options}

    def to_dict(self) -> dict:
        """JSON-ready: ``AttackSpec.of(spec.to_dict()) == spec``."""
        return {"name": self.name, "options": dict(self.options), "seed": self.seed,
                **({} if self.step is None else {"step": self.step})}

    def create(self, model: nn.Module) -> Attack:
        """The attack on ``model``, built through the registry."""
        return create_attack(self.name, model, **self.kwargs)

    def factory(self) -> AttackFactory:
        """``(model) -> attack``, for code that attacks several models."""
        return self.create


def attack_factory(attack) -> AttackFactory:
    """``(model) -> attack`` from an :class:`~transferability.attacks.AttackSpec` (or a
    registered name), or a factory as given: the one place code that attacks several
    models (transfer matrices, α) turns its ``attack`` argument into a factory. An
    :class:`Attack` instance is bound to one model and is refused."""
    if isinstance(attack, str | Mapping):
        attack = AttackSpec.of(attack)
    if isinstance(attack, AttackSpec):
        return attack.factory()
    if isinstance(attack, Attack) or not callable(attack):
        raise ValueError("attack: expected an AttackSpec, an attack name or a factory "
                         "(model) -> attack, e.g. functools.partial(PGD, eps=...), got "
                         f"{attack!r}; an Attack instance is bound to one model")
    return attack


class AttackRule(Constraint):
    """The rule of a setting that holds an attack (a study's ``attack``): an
    :class:`AttackSpec`, its name or its ``to_dict()``, laid over ``defaults`` when given;
    with ``factories``, a ``(model) -> attack`` used as given (not an :class:`Attack`
    instance, which is bound to one model). On the command line such a setting is the
    ``--attack --eps --steps --step-size --loss`` group."""

    def __init__(self, defaults: AttackSpec | None = None, *, factories: bool = True):
        self.defaults, self.factories = defaults, factories

    def check(self, value, name: str):
        try:
            if isinstance(value, str | Mapping):  # a name, or a stored to_dict()
                value = AttackSpec.of(value)
            if isinstance(value, AttackSpec) and self.defaults is not None:
                value = value.with_defaults(self.defaults)
        except (TypeError, ValueError) as exc:  # named by the setting that holds it
            raise ValueError(f"{name}: {str(exc).removeprefix('attack: ')}") from None
        if isinstance(value, AttackSpec):
            return value
        if not self.factories or isinstance(value, Attack) or not callable(value):
            raise ValueError(f"{name}: expected an AttackSpec or an attack name"
                             + (", or a factory (model) -> attack" if self.factories else "")
                             + f", got {value!r}")
        return value

    def invalid(self) -> tuple:
        return ("no-such-attack", 3)

    def describe(self) -> str:
        return "attack"
