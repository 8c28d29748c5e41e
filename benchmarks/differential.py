"""Our attacks against independent implementations: torchattacks 3.5.1 and torchattack 1.7.2.

:data:`PAIRS` is the one pairing table: for each attack, our registry name and options and
the other package's constructor with the settings that make the two the same attack (the
step size, step count, momentum and copies set alike on both sides; ``departure`` names what
we do differently by default and set alike here). :func:`compare` runs one pair:

- deterministic pairs must give the same images: ``pixel_agreement``, the share of pixels
  within 1e-6, at least 99.9 %. Run them in float64 to compare the algorithms, not their
  rounding: in float32 NI's look-ahead ``x + α·μ·g`` turns rounding into a few flipped signs
  (1.5 % of the pixels on a CIFAR ResNet-20; none in float64);
- random pairs (random start, DI, Admix/BSR draws, VMI neighbours, FIA masks, Square)
  cannot, so their success rates — white-box on ``model``, and on ``victim`` when given —
  must agree within 2 standard errors of the difference + 2 points.

``tests/test_differential.py`` runs every pair on small trained models; the real-model
benchmark runs the same table on CIFAR-10 ResNets. Both packages install with ``--no-deps``
(``make setup``); ``torchattack`` imports torchvision for its preprocessing helpers only, so
:func:`load` lets it import without one (its BSR alone needs the real torchvision).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import random
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from transferability.attacks import create_attack
from transferability.attacks._hooks import residual_blocks

__all__ = ["Pair", "PAIRS", "compare", "load", "available", "AGREEMENT", "ATOL"]

#: deterministic pairs: the share of pixels that must agree, and within what
AGREEMENT, ATOL = 0.999, 1e-6
STEPS = 10


@dataclass(frozen=True)
class Pair:
    """One attack in both implementations.

    ``ours(model, eps)`` gives the options of ``create_attack(name, model, eps=eps, ...)``;
    ``theirs(package, model, eps)`` builds the other package's attack, called as
    ``attack(x, y)``."""

    name: str
    package: str  # "torchattacks" or "torchattack"
    random: bool
    ours: Callable[[nn.Module, float], dict]
    theirs: Callable[[types.ModuleType, nn.Module, float], Callable]
    departure: str = ""
    needs: str = ""  # a module their attack needs beyond the package
    float32: bool = False  # their code makes float32 tensors: both sides run in float32

    @property
    def key(self) -> str:
        """``name/package``, the key of :data:`PAIRS`."""
        return f"{self.name}/{self.package}"


def _num_classes(model: nn.Module) -> int:
    return next(m for m in reversed(list(model.modules())) if isinstance(m, nn.Linear)).out_features


def _layer(model: nn.Module, short: str) -> str:
    """The name of ``model``'s module called ``short`` (maybe under a wrapper's prefix)."""
    return next(n for n, _ in model.named_modules() if n == short or n.endswith("." + short))


def _not_stage_first(model: nn.Module) -> list[str]:
    """torchattack's SGM blocks: every residual block but the first of each stage."""
    return [n for n in residual_blocks(model) if not n.endswith(".0")]


def _mi(**kw):
    return lambda m, eps: {"alpha": eps / STEPS, "steps": STEPS, **kw}


_TI = "the TI kernel: ours scales with the image (15 px at 299), theirs is 15 px; 7 px on both"
PAIRS: dict[str, Pair] = {p.key: p for p in [
    # ---- torchattacks 3.5.1 --------------------------------------------------------------
    Pair("fgsm", "torchattacks", False, lambda m, eps: {},
         lambda ta, m, eps: ta.FGSM(m, eps=eps)),
    Pair("bim", "torchattacks", False, lambda m, eps: {"alpha": eps / 4, "steps": STEPS},
         lambda ta, m, eps: ta.BIM(m, eps=eps, alpha=eps / 4, steps=STEPS)),
    Pair("pgd", "torchattacks", True, lambda m, eps: {"alpha": eps / 4, "steps": STEPS},
         lambda ta, m, eps: ta.PGD(m, eps=eps, alpha=eps / 4, steps=STEPS, random_start=True)),
    Pair("mifgsm", "torchattacks", False, _mi(),
         lambda ta, m, eps: ta.MIFGSM(m, eps=eps, alpha=eps / STEPS, steps=STEPS, decay=1.0)),
    Pair("nifgsm", "torchattacks", False, _mi(),
         lambda ta, m, eps: ta.NIFGSM(m, eps=eps, alpha=eps / STEPS, steps=STEPS, decay=1.0)),
    Pair("si", "torchattacks", False, _mi(copies=5),
         lambda ta, m, eps: ta.SINIFGSM(m, eps=eps, alpha=eps / STEPS, steps=STEPS, m=5)),
    Pair("ti", "torchattacks", False, _mi(kernel_size=7, reference_size=None),
         lambda ta, m, eps: _double_kernel(ta.TIFGSM(
             m, eps=eps, alpha=eps / STEPS, steps=STEPS, decay=1.0, len_kernel=7,
             diversity_prob=0.0), m),
         _TI + "; their TIFGSM also adds DI (p = 0.5) and no momentum by default: off, μ = 1"),
    Pair("di", "torchattacks", True, lambda m, eps: {"alpha": eps / 4, "steps": STEPS},
         lambda ta, m, eps: ta.DIFGSM(m, eps=eps, alpha=eps / 4, steps=STEPS, decay=0.0)),
    Pair("mi-di", "torchattacks", True, _mi(),
         lambda ta, m, eps: ta.DIFGSM(m, eps=eps, alpha=eps / STEPS, steps=STEPS, decay=1.0)),
    Pair("vmifgsm", "torchattacks", True, _mi(samples=5),
         lambda ta, m, eps: ta.VMIFGSM(m, eps=eps, alpha=eps / STEPS, steps=STEPS, N=5),
         "N = 20 neighbours in the paper and our default, 5 in torchattacks': 5 on both"),
    Pair("vnifgsm", "torchattacks", True, _mi(samples=5),
         lambda ta, m, eps: ta.VNIFGSM(m, eps=eps, alpha=eps / STEPS, steps=STEPS, N=5),
         "N = 5 on both, as for vmifgsm"),
    Pair("apgd-ce", "torchattacks", True, lambda m, eps: {"steps": 20},
         lambda ta, m, eps: ta.APGD(m, eps=eps, steps=20, loss="ce", seed=1)),
    Pair("apgd-dlr", "torchattacks", True, lambda m, eps: {"steps": 20},
         lambda ta, m, eps: ta.APGD(m, eps=eps, steps=20, loss="dlr", seed=1)),
    Pair("apgd-t", "torchattacks", True, lambda m, eps: {"steps": 20, "n_targets": 3},
         lambda ta, m, eps: _targets(ta.APGDT(m, eps=eps, steps=20, seed=1,
                                              n_classes=_num_classes(m)), 3),
         float32=True),
    Pair("fab-t", "torchattacks", True, lambda m, eps: {"steps": 20, "n_targets": 3},
         lambda ta, m, eps: _targets(ta.FAB(m, eps=eps, steps=20, seed=1, multi_targeted=True,
                                            n_classes=_num_classes(m)), 3),
         float32=True),
    Pair("square", "torchattacks", True, lambda m, eps: {"queries": 300},
         lambda ta, m, eps: ta.Square(m, eps=eps, n_queries=300, seed=1, resc_schedule=False),
         "p's schedule: torchattacks' Square stretches it to n_queries by default (the Square "
         "code's option); AutoAttack's Square (resc_schedule=False) and ours do not: off"),
    # ---- torchattack 1.7.2: its NIFGSM, SINIFGSM and TIFGSM step along μ·∇ + ∇/mean|∇|,
    # not the accumulated momentum (MI's g = μ·g + ...), so they are not paired ----------
    Pair("fgsm", "torchattack", False, lambda m, eps: {},
         lambda tk, m, eps: tk.FGSM(m, eps=eps)),
    Pair("bim", "torchattack", False, lambda m, eps: {"alpha": eps / 4, "steps": STEPS},
         lambda tk, m, eps: tk.IFGSM(m, eps=eps, alpha=eps / 4, steps=STEPS)),
    Pair("mifgsm", "torchattack", False, _mi(),
         lambda tk, m, eps: tk.MIFGSM(m, eps=eps, steps=STEPS, decay=1.0)),
    Pair("pgd", "torchattack", True, lambda m, eps: {"alpha": eps / 4, "steps": STEPS},
         lambda tk, m, eps: tk.PGD(m, eps=eps, alpha=eps / 4, steps=STEPS)),
    Pair("mi-di", "torchattack", True, _mi(mode="nearest"),
         lambda tk, m, eps: tk.DIFGSM(m, eps=eps, steps=STEPS, diversity_prob=0.5),
         "DI's resize: ours bilinear (as torchattacks), theirs nearest (the paper's): nearest; "
         "theirs applies DI with p = 1 by default: 0.5 on both"),
    Pair("sgm", "torchattack", False,
         lambda m, eps: {"alpha": eps / STEPS, "steps": STEPS, "blocks": _not_stage_first(m)},
         lambda tk, m, eps: tk.SGM(m, hook_cfg="resnet", eps=eps, steps=STEPS, decay=0.0),
         "blocks: ours skip the model's first block (the authors' current code), theirs the "
         "first of every stage: theirs on both"),
    Pair("admix", "torchattack", True, _mi(),
         lambda tk, m, eps: tk.Admix(m, eps=eps, steps=STEPS, num_classes=_num_classes(m))),
    Pair("bsr", "torchattack", True, _mi(copies=20, blocks=3),
         lambda tk, m, eps: tk.BSR(m, eps=eps, steps=STEPS, num_scale=20, num_block=3),
         "blocks: 2 in our default (the paper's), 3 in theirs: 3 on both",
         needs="torchvision"),
    Pair("fia", "torchattack", True,
         lambda m, eps: {"alpha": eps / STEPS, "steps": STEPS, "layer": _layer(m, "layer2")},
         lambda tk, m, eps: tk.FIA(m, eps=eps, steps=STEPS,
                                   feature_layer_cfg=_layer(m, "layer2")),
         "the aggregate gradient: ours of the label's logit (the paper), theirs of its "
         "softmax probability"),
]}


def _double_kernel(attack, model):
    """torchattacks' TI keeps its kernel in float32: match the model's dtype."""
    attack.stacked_kernel = attack.stacked_kernel.to(next(model.parameters()).dtype)
    return attack


def _targets(attack, n: int):
    """torchattacks' APGDT and FAB try ``n_target_classes`` targets: the same n as ours."""
    attack.n_target_classes = n
    return attack


def load(package: str) -> types.ModuleType | None:
    """``torchattacks`` or ``torchattack``, or None when it is not installed. torchattack
    imports torchvision's transforms at import time for preprocessing helpers we do not use;
    without torchvision a stand-in lets it import and is removed again at once."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        if package != "torchattack" or "torchvision" not in str(exc):
            return None
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
    stubs = {n: types.ModuleType(n) for n in names}
    modes = types.SimpleNamespace(BILINEAR="bilinear", BICUBIC="bicubic", NEAREST="nearest")
    for n in names[1:]:
        stubs[n].InterpolationMode = modes
    stubs["torchvision.transforms"].RandomRotation = _no_torchvision
    stubs["torchvision"].transforms = stubs["torchvision.transforms"]
    stubs["torchvision.transforms"].functional = stubs["torchvision.transforms.functional"]
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update(stubs)
    try:
        return importlib.import_module(package)
    except (ImportError, AttributeError):
        return None
    finally:
        for n, module in saved.items():
            if module is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = module


def _no_torchvision(*args, **kwargs):
    raise ImportError("torchvision is not installed")


def available(pair: Pair) -> str:
    """Why ``pair`` cannot run here, or "" when it can."""
    if load(pair.package) is None:
        return f"{pair.package} is not installed"
    if pair.needs and importlib.util.find_spec(pair.needs) is None:
        return f"{pair.package}'s {pair.name} needs {pair.needs}"
    return ""


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@torch.no_grad()
def _error(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(dim=1) != y).double().mean().item()


def compare(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
            eps: float = 8 / 255, victim: nn.Module | None = None, seed: int = 0) -> dict:
    """Run the pair ``name`` (a key of :data:`PAIRS`, or our attack's name for its first
    pair) both ways on ``(x, y)`` (images in [0, 1], true labels).

    Returns ``pixel_agreement`` (share of pixels within :data:`ATOL`), ``images_equal``
    (images whose every pixel is within it: one image whose path a rounding tie sends
    elsewhere costs the share of its pixels, not the comparison), the error rates
    ``our_rate``/``their_rate`` on ``model`` and ``our_transfer``/``their_transfer`` on
    ``victim`` (None without one), the ``tolerance`` of a random pair (2 standard errors of
    the difference + 0.02 on the rate it is judged by: the victim's when given) and ``ok``.
    """
    pair = PAIRS.get(name) or next(p for p in PAIRS.values() if p.name == name)
    package = load(pair.package)
    if package is None:
        raise RuntimeError(f"{name}: {available(pair)}")
    model = copy.deepcopy(model).eval()  # their hooks (SGM's) stay on their copy
    if pair.float32:
        model = model.float()
    x = x.to(next(model.parameters()))
    y = y.to(x.device)
    ours = create_attack(pair.name, model, eps=eps, seed=seed, **pair.ours(model, eps))(x, y)
    _seed(seed + 1)
    theirs = pair.theirs(package, model, eps)(x, y).detach().to(x)
    result = {"name": pair.name, "package": pair.package, "random": pair.random,
              "departure": pair.departure,
              "pixel_agreement": ((ours - theirs).abs() <= ATOL).double().mean().item(),
              "images_equal": int(((ours - theirs).abs() <= ATOL).flatten(1).all(1).sum()),
              "our_rate": _error(model, ours, y), "their_rate": _error(model, theirs, y),
              "our_transfer": None, "their_transfer": None,
              "max_perturbation": max((ours - x).abs().max().item(),
                                      (theirs - x).abs().max().item())}
    if victim is not None:
        victim.eval()
        like = next(victim.parameters())
        result["our_transfer"] = _error(victim, ours.to(like), y)
        result["their_transfer"] = _error(victim, theirs.to(like), y)
    if pair.random:
        key = "transfer" if victim is not None else "rate"
        p, q = result[f"our_{key}"], result[f"their_{key}"]
        se = math.sqrt((p * (1 - p) + q * (1 - q)) / len(x))
        result["tolerance"] = 2 * se + 0.02
        result["ok"] = abs(p - q) <= result["tolerance"]
    else:
        result["tolerance"] = AGREEMENT
        result["ok"] = result["pixel_agreement"] >= AGREEMENT
    result["ok"] = bool(result["ok"]) and result["max_perturbation"] <= eps + 1e-6
    return result
