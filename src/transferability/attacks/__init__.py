"""Adversarial attacks in the torchattacks style: build once, call with ``(x, y)``.

>>> attack = PGD(model, eps=0.3, alpha=0.01, steps=40)      # doctest: +SKIP
>>> x_adv = attack(x, y)                                     # doctest: +SKIP

FGSM, PGD (BIM without random start; L∞ and L2), MI-FGSM and DI input diversity, targeted
or untargeted, with a cross-entropy, Carlini–Wagner margin or logit loss; the transfer
attacks: gradient stabilisation (NI, VMI, VNI, PGN), input transformations (TI, SI, Admix,
SIA, BSR), model-specific gradients (SGM, LinBP), feature-level (ILA, FIA) and the SVRE
ensemble attack; APGD (CE, DLR), APGD-T, FAB-T, Square and AutoAttack for robust accuracy,
with AutoAttack's checks. Inputs are images in [0, 1]; normalisation belongs inside the
model, which must output logits.
"""

from . import norms
from .admix import Admix
from .apgd import APGD, apgd, dlr
from .apgdt import APGDT
from .autoattack import AutoAttack
from .base import (
    LOSSES,
    Attack,
    Compose,
    GradientMaskingWarning,
    InputTransform,
    attack_batch,
    margin,
    random_targets,
)
from .bsr import BSR
from .checks import EvaluationCheckWarning
from .di import DI
from .fab import FABT
from .fgsm import FGSM, fgsm
from .fia import FIA
from .ila import ILA
from .linbp import LinBP
from .mifgsm import MIFGSM, mifgsm
from .nifgsm import NIFGSM
from .pgd import PGD, pgd
from .pgn import PGN
from .registry import (
    AttackFactory,
    AttackInfo,
    attack_info,
    create_attack,
    list_attacks,
    register_attack,
    register_preset,
)
from .robust import RobustAccuracy, benchmark, robust_accuracy
from .sgm import SGM
from .si import SI
from .sia import SIA
from .spec import AttackRule, AttackSpec, attack_factory
from .square import Square
from .svre import SVRE
from .ti import TI
from .vmifgsm import VMIFGSM
from .vnifgsm import VNIFGSM

__all__ = [
    "Attack", "InputTransform", "LOSSES", "margin", "norms", "GradientMaskingWarning",
    "FGSM", "PGD", "MIFGSM", "DI",
    "NIFGSM", "VMIFGSM", "VNIFGSM", "PGN", "TI", "SI", "Admix", "SIA", "BSR", "SGM", "LinBP",
    "ILA", "FIA", "SVRE", "Compose", "random_targets", "attack_batch",
    "fgsm", "pgd", "mifgsm",
    "create_attack", "list_attacks", "attack_info", "AttackInfo", "register_attack",
    "register_preset", "attack_factory", "AttackFactory",
    "AttackSpec",
    "AttackRule",
    "RobustAccuracy", "robust_accuracy",
    "APGD", "APGDT", "FABT", "Square", "AutoAttack", "apgd", "dlr", "benchmark",
    "EvaluationCheckWarning",
]
