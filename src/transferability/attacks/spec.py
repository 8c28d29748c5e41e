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

from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from .._validation import Constraint, check_eps, check_seed
from .base import Attack
from .registry import _ATTACKS, AttackFactory, create_attack

__all__ = ["AttackSpec", "AttackRule"]


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack ``name`` with ``options`` (the attack class's own keywords, e.g.
    ``eps``, ``steps``, ``alpha``) and a ``seed`` (None: the attack's own).

    Made once, checked once: an unknown name, options that are not a dict and an ``eps``
    that is not > 0 are refused here, before any model is attacked. A ``seed`` among the
    options becomes the spec's ``seed``. ``with_defaults(defaults)`` lays the spec over a
    caller's defaults; ``with_options(**options)`` over the spec's own; ``create(model)``
    builds the attack (registry); ``factory()`` the ``(model) -> attack`` of code that
    attacks several models; ``kwargs`` are the keywords the attack is built with;
    ``to_dict()`` a JSON-ready copy.
    """

    name: str
    options: Mapping = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ValueError(f"attack: expected an attack name, got {self.name!r}")
        if self.name not in _ATTACKS:
            raise ValueError(f"attack: unknown attack {self.name!r}; available: "
                             f"{', '.join(_ATTACKS.names())}")
        if not isinstance(self.options, Mapping):
            raise ValueError(f"attack_options: expected a dict, got "
                             f"{type(self.options).__name__}")
        options = dict(self.options)
        seed = options.pop("seed", None) if self.seed is None else self.seed
        options.pop("seed", None)
        if "eps" in options:
            options["eps"] = check_eps(options["eps"])
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "seed", None if seed is None else check_seed(seed))

    def with_defaults(self, defaults: Mapping | AttackSpec) -> AttackSpec:
        """This spec over a caller's ``defaults`` (options, maybe with a ``seed``, or the
        options and seed of another spec): what this spec gives wins."""
        if isinstance(defaults, AttackSpec):
            defaults = defaults.kwargs
        return AttackSpec(self.name, {**defaults, **self.options}, self.seed)

    def with_options(self, **options) -> AttackSpec:
        """This spec with ``options`` over its own."""
        return AttackSpec(self.name, {**self.options, **options}, self.seed)

    @property
    def kwargs(self) -> dict:
        """The keywords the attack is built with: the seed (when set), then the options."""
        return {**({} if self.seed is None else {"seed": self.seed}), **self.options}

    def to_dict(self) -> dict:
        """JSON-ready: ``AttackSpec(**spec.to_dict()) == spec``."""
        return {"name": self.name, "options": dict(self.options), "seed": self.seed}

    def create(self, model: nn.Module) -> Attack:
        """The attack on ``model``, built through the registry."""
        return create_attack(self.name, model, **self.kwargs)

    def factory(self) -> AttackFactory:
        """``(model) -> attack``, for code that attacks several models."""
        return self.create


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
            if isinstance(value, str):
                value = AttackSpec(value)
            elif isinstance(value, Mapping):  # a stored to_dict()
                value = AttackSpec(**value)
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
