"""Attack registry: ``create_attack(name, model, **kw)`` and ``list_attacks()``.

Names and what they build (every keyword of the class is accepted)::

    fgsm     FGSM(model, eps)
    bim      PGD(model, eps, alpha, steps, random_start=False)       Kurakin et al. 2017
    pgd      PGD(model, eps, alpha, steps)                           Madry et al. 2018
    mifgsm   MIFGSM(model, eps, alpha, steps, decay)                 Dong et al. 2018
    di       PGD(..., random_start=False, input_transform=DI(p, resize_rate))  DI²-FGSM
    mi-di    MIFGSM(..., input_transform=DI(p, resize_rate))          M-DI²-FGSM, Xie et al.
    apgd-ce  APGD(model, eps, steps, loss="ce")                       Croce & Hein 2020
    apgd-dlr APGD(model, eps, steps, loss="dlr")
    apgd-t   APGDT(model, eps, steps, n_targets)
    fab-t    FABT(model, eps, steps, n_targets)
    square   Square(model, eps, queries)                              Andriushchenko et al.
    autoattack  AutoAttack(model, norm, eps, version)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from .._registry import Registry
from .apgd import APGD
from .apgdt import APGDT
from .autoattack import AutoAttack
from .base import Attack
from .di import DI
from .fab import FABT
from .fgsm import FGSM
from .mifgsm import MIFGSM
from .pgd import PGD
from .square import Square

__all__ = ["register_attack", "create_attack", "list_attacks", "attack_factory",
           "AttackFactory", "with_seed"]

_ATTACKS = Registry("attack")


def register_attack(name: str):
    """Decorator: make an attack factory ``(model, **kw) -> Attack`` available by ``name``."""
    return _ATTACKS.register(name)


def list_attacks() -> list[str]:
    """Names accepted by :func:`create_attack`."""
    return _ATTACKS.names()


def create_attack(name: str, model: nn.Module, **kwargs) -> Attack:
    """Build a registered attack, e.g. ``create_attack("pgd", model, eps=0.1, steps=20)``."""
    factory = _ATTACKS.get(name, "attack")
    try:
        return factory(model, **kwargs)
    except TypeError as exc:
        raise ValueError(f"attack_options: cannot build {name!r} with {sorted(kwargs)}: "
                         f"{str(exc).split('() ')[-1]}") from None


#: Builds the attack for one model; the attack is called as ``attack(x, y)`` and returns
#: ``x_adv`` (a torchattacks attack works too).
AttackFactory = Callable[[nn.Module], Callable]


def attack_factory(attack: str | AttackFactory, attack_options: Mapping | None = None
                   ) -> AttackFactory:
    """``(model) -> attack`` from a registered name and its options, or a factory as given.

    The one place where ``attack`` + ``attack_options`` are checked. Code that attacks
    several models (transfer matrices, α) takes a factory: an :class:`Attack` instance is
    bound to one model and is refused here.
    """
    if attack_options is not None and not isinstance(attack_options, Mapping):
        raise ValueError(f"attack_options: expected a dict, got {type(attack_options).__name__}")
    options = dict(attack_options or {})
    if isinstance(attack, str):
        _ATTACKS.get(attack, "attack")  # fail now, not at the first model
        return lambda model: create_attack(attack, model, **options)
    if isinstance(attack, Attack) or not callable(attack):
        raise ValueError("attack: expected an attack name or a factory (model) -> attack, e.g. "
                         f"functools.partial(PGD, eps=...), got {attack!r}; an Attack instance "
                         "is bound to one model")
    if options:
        raise ValueError(f"attack_options: {sorted(options)} only go with an attack name; "
                         "put them inside the factory")
    return attack


def with_seed(attack: str | AttackFactory, attack_options: Mapping | None, seed: int
              ) -> dict | None:
    """``attack_options`` with a default ``seed`` for a named attack (a factory's own)."""
    if not isinstance(attack, str):
        return attack_options
    return {"seed": seed, **(attack_options or {})}


def _with_di(kwargs: dict) -> dict:
    """Move DI's own keywords (``p``, ``resize_rate``, ``mode``) into an ``input_transform``."""
    di_kw = {k: kwargs.pop(k) for k in ("p", "resize_rate", "mode") if k in kwargs}
    if "input_transform" in kwargs:
        raise ValueError("input_transform: the DI attacks set it themselves; use 'pgd' or "
                         "'mifgsm' with input_transform=... instead")
    return {**kwargs, "input_transform": DI(**di_kw)}


register_attack("fgsm")(FGSM)
register_attack("pgd")(PGD)
register_attack("mifgsm")(MIFGSM)


@register_attack("bim")
def _bim(model: nn.Module, **kwargs) -> PGD:
    return PGD(model, **{**kwargs, "random_start": False})


@register_attack("di")
def _di(model: nn.Module, **kwargs) -> PGD:
    return PGD(model, **{**_with_di(kwargs), "random_start": False})


@register_attack("mi-di")
def _mi_di(model: nn.Module, **kwargs) -> MIFGSM:
    return MIFGSM(model, **_with_di(kwargs))


@register_attack("apgd-ce")
def _apgd_ce(model: nn.Module, **kwargs) -> APGD:
    return APGD(model, **{**kwargs, "loss": "ce"})


@register_attack("apgd-dlr")
def _apgd_dlr(model: nn.Module, **kwargs) -> APGD:
    return APGD(model, **{**kwargs, "loss": "dlr"})


register_attack("apgd-t")(APGDT)
register_attack("fab-t")(FABT)
register_attack("square")(Square)
register_attack("autoattack")(AutoAttack)
