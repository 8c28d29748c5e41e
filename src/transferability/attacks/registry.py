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
    nifgsm   NIFGSM(model, eps, alpha, steps, decay)                 Lin et al. 2020
    vmifgsm  VMIFGSM(..., samples, beta)                             Wang & He 2021
    vnifgsm  VNIFGSM(..., samples, beta)                             Wang & He 2021
    pgn      PGN(..., samples, zeta, delta)                          Ge et al. 2023
    ti       MIFGSM(..., gradient_transform=TI(kernel_size, nsig))   TI-MI-FGSM, Dong et al. 2019
    si       NIFGSM(..., input_transform=SI(copies))                 SI-NI-FGSM, Lin et al. 2020
    admix    MIFGSM(..., input_transform=Admix(scales, mixes, strength))   Wang et al. 2021
    sia      MIFGSM(..., input_transform=SIA(copies, blocks))        Wang et al. 2023
    bsr      MIFGSM(..., input_transform=BSR(copies, blocks, max_angle))   Wang et al. 2024
    sgm      SGM(model, eps, alpha, steps, gamma, blocks)            Wu et al. 2020
    linbp    LinBP(model, eps, alpha, steps, start)                  Guo et al. 2020
    ila      ILA(model, eps, alpha, steps, layer, base_steps)        Huang et al. 2019
    fia      FIA(model, eps, alpha, steps, layer, copies, drop)      Wang et al. 2021
    svre     SVRE(ensemble, eps, alpha, steps, inner_steps)          Xiong et al. 2022

The input-transform attacks (``si``, ``admix``, ``sia``, ``bsr``) take the transform's own
keywords and compose with an ``input_transform`` given to them (applied after theirs, e.g.
``input_transform=DI()``), and ``ti`` composes with any; ``p``/``resize_rate`` add DI.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

from torch import nn

from .._registry import Registry
from .admix import Admix
from .apgd import APGD
from .apgdt import APGDT
from .autoattack import AutoAttack
from .base import Attack, Compose
from .bsr import BSR
from .di import DI
from .fab import FABT
from .fgsm import FGSM
from .fia import FIA
from .ila import ILA
from .linbp import LinBP
from .mifgsm import MIFGSM
from .nifgsm import NIFGSM
from .pgd import PGD
from .pgn import PGN
from .sgm import SGM
from .si import SI
from .sia import SIA
from .square import Square
from .svre import SVRE
from .ti import TI
from .vmifgsm import VMIFGSM
from .vnifgsm import VNIFGSM

__all__ = ["register_attack", "create_attack", "list_attacks", "attack_factory",
           "AttackFactory"]

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


def attack_factory(attack, attack_options: Mapping | None = None) -> AttackFactory:
    """``(model) -> attack`` from a registered name and its options (an
    :class:`~transferability.attacks.AttackSpec` of them), a spec, or a factory as given.

    The one place where ``attack`` + ``attack_options`` are checked. Code that attacks
    several models (transfer matrices, α) takes a factory: an :class:`Attack` instance is
    bound to one model and is refused here.
    """
    from .spec import AttackSpec  # the spec is built on this registry

    if attack_options is not None and not isinstance(attack_options, Mapping):
        raise ValueError(f"attack_options: expected a dict, got {type(attack_options).__name__}")
    options = dict(attack_options or {})
    if isinstance(attack, str):  # checked now (name, eps), not at the first model
        return AttackSpec(attack, options).factory()
    if isinstance(attack, AttackSpec):
        if options:
            raise ValueError(f"attack_options: {sorted(options)} go inside the AttackSpec "
                             f"(spec.with_options(...))")
        return attack.factory()
    if isinstance(attack, Attack) or not callable(attack):
        raise ValueError("attack: expected an attack name or a factory (model) -> attack, e.g. "
                         f"functools.partial(PGD, eps=...), got {attack!r}; an Attack instance "
                         "is bound to one model")
    if options:
        raise ValueError(f"attack_options: {sorted(options)} only go with an attack name; "
                         "put them inside the factory")
    return attack


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
def _own(kwargs: dict, cls) -> dict:
    """Pop the keywords of ``cls.__init__`` out of ``kwargs``."""
    names = inspect.signature(cls).parameters
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}


def _with_transform(kwargs: dict, cls) -> dict:
    """An ``input_transform`` of ``cls`` built from its keywords, followed by DI when DI's
    keywords are given and by the caller's own ``input_transform``."""
    kwargs = dict(kwargs)
    steps = [cls(**_own(kwargs, cls))]
    if {"p", "resize_rate"} & set(kwargs):
        steps.append(DI(**_own(kwargs, DI)))
    if kwargs.get("input_transform") is not None:
        steps.append(kwargs.pop("input_transform"))
    return {**kwargs, "input_transform": steps[0] if len(steps) == 1 else Compose(steps)}


register_attack("nifgsm")(NIFGSM)
register_attack("vmifgsm")(VMIFGSM)
register_attack("vnifgsm")(VNIFGSM)
register_attack("pgn")(PGN)
register_attack("sgm")(SGM)
register_attack("linbp")(LinBP)
register_attack("ila")(ILA)
register_attack("fia")(FIA)
register_attack("svre")(SVRE)


@register_attack("ti")
def _ti(model: nn.Module, **kwargs) -> MIFGSM:
    kwargs = dict(kwargs)
    ti = TI(**_own(kwargs, TI))
    return MIFGSM(model, **kwargs, gradient_transform=ti)


@register_attack("si")
def _si(model: nn.Module, **kwargs) -> NIFGSM:
    return NIFGSM(model, **_with_transform(kwargs, SI))


@register_attack("admix")
def _admix(model: nn.Module, **kwargs) -> MIFGSM:
    return MIFGSM(model, **_with_transform(kwargs, Admix))


@register_attack("sia")
def _sia(model: nn.Module, **kwargs) -> MIFGSM:
    return MIFGSM(model, **_with_transform(kwargs, SIA))


@register_attack("bsr")
def _bsr(model: nn.Module, **kwargs) -> MIFGSM:
    return MIFGSM(model, **_with_transform(kwargs, BSR))
