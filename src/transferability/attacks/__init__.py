"""Adversarial attacks in the torchattacks style: build once, call with ``(x, y)``.

>>> attack = PGD(model, eps=0.3, alpha=0.01, steps=40)      # doctest: +SKIP
>>> x_adv = attack(x, y)                                     # doctest: +SKIP

FGSM, PGD (BIM without random start; L∞ and L2), MI-FGSM and DI input diversity, targeted
or untargeted, with a cross-entropy or Carlini–Wagner margin loss; APGD (CE, DLR), APGD-T,
FAB-T, Square and AutoAttack for robust accuracy, with AutoAttack's checks. Inputs are
images in [0, 1]; normalisation belongs inside the model, which must output logits.
"""

from . import norms
from .apgd import APGD, apgd, dlr
from .apgdt import APGDT
from .autoattack import AutoAttack
from .base import LOSSES, Attack, GradientMaskingWarning, InputTransform, margin
from .checks import EvaluationCheckWarning
from .di import DI
from .fab import FABT
from .fgsm import FGSM, fgsm
from .mifgsm import MIFGSM, mifgsm
from .pgd import PGD, pgd
from .registry import (
    AttackFactory,
    attack_factory,
    create_attack,
    list_attacks,
    register_attack,
    with_seed,
)
from .robust import RobustAccuracy, benchmark, robust_accuracy
from .square import Square

__all__ = [
    "Attack", "InputTransform", "LOSSES", "margin", "norms", "GradientMaskingWarning",
    "FGSM", "PGD", "MIFGSM", "DI",
    "fgsm", "pgd", "mifgsm",
    "create_attack", "list_attacks", "register_attack", "attack_factory", "AttackFactory",
    "with_seed", "RobustAccuracy", "robust_accuracy",
    "APGD", "APGDT", "FABT", "Square", "AutoAttack", "apgd", "dlr", "benchmark",
    "EvaluationCheckWarning",
]
