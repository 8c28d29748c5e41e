"""Robust accuracy: AutoAttack, or the fast per-sample worst case of two PGD attacks.

``attack="autoattack"`` runs :class:`~transferability.attacks.AutoAttack` (Croce & Hein
2020), the standard a robustness claim is held to (RobustBench accepts no weaker one).
``attack="pgd"`` is the fast option: the worst case over L∞/L2 PGD with cross-entropy and
PGD with the Carlini–Wagner margin (Madry et al. 2018; Carlini & Wagner 2017), each from a
random start, with ``restarts`` draws; the margin loss sees through a saturated softmax
(:class:`GradientMaskingWarning`). Either way a sample counts as robust only if the model
classifies it correctly on the clean input and after every attack, so robust accuracy is
never above clean accuracy or any single attack's accuracy.

:func:`benchmark` is RobustBench's ``benchmark`` in meaning: clean and robust accuracy
under standard AutoAttack on ``n_examples`` points (a seeded class-stratified sample), and
the time taken.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from .._results import Result
from .._validation import (
    check_choice,
    check_eps,
    check_images,
    check_int,
    check_labels_tensor,
    check_seed,
)
from ..data.tasks import sample_positions
from ..features import predict
from ..utils import batches, progress
from .autoattack import VERSIONS
from .norms import check_norm
from .spec import AttackSpec

__all__ = ["RobustAccuracy", "robust_accuracy", "benchmark", "ROBUST_ATTACKS", "THREAT_MODELS"]

ROBUST_ATTACKS = ("autoattack", "pgd")
#: RobustBench's threat-model names -> the library's norms
THREAT_MODELS = {"Linf": "linf", "L2": "l2"}


@dataclass(frozen=True)
class RobustAccuracy(Result):
    """Clean and robust accuracy with their counts, the attack used, and per attack the
    accuracy under it (PGD: alone; AutoAttack: after it and the attacks before it, as
    AutoAttack reports). ``broken_by`` names, per sample, the attack that broke it
    (``"clean"``: misclassified without attack; ``None``: robust). ``seconds``: the time
    taken (:func:`benchmark`)."""

    accuracy: float
    robust_accuracy: float
    n: int
    clean_correct: int
    robust_correct: int
    eps: float
    per_attack: dict = field(default_factory=dict)
    attack: str = "pgd"
    broken_by: list = field(default_factory=list)
    seconds: float | None = None

    schema: ClassVar[int] = 2
    renamed: ClassVar[dict] = {"clean_accuracy": "accuracy"}


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    attack: str = "pgd", steps: int | None = None, restarts: int = 1,
                    norm: str = "linf", version: str = "standard", batch_size: int = 256,
                    seed: int = 0, show_progress: bool | None = None) -> RobustAccuracy:
    """Robust accuracy at radius ``eps`` under ``attack`` (see the module docstring).

    ``steps``: PGD iterations (default 20) or APGD/FAB iterations (default 100);
    ``restarts``: PGD random starts per loss; ``version``: AutoAttack's version;
    ``seed``: restart r of batch i draws from ``batch_seed(seed + r, i)``.
    """
    x = check_images(x, "x")
    y = check_labels_tensor(y, "y", n=len(x))
    eps = check_eps(eps)
    attack = check_choice(attack, "attack", ROBUST_ATTACKS)
    norm = check_norm(norm)
    version = check_choice(version, "version", VERSIONS)
    restarts = check_int(restarts, "restarts", maximum=100)
    steps = check_int((20 if attack == "pgd" else 100) if steps is None else steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    seed = check_seed(seed)
    if len(x) == 0:
        raise ValueError("x: is an empty batch")
    logits = predict(model, x, batch_size=batch_size)
    correct = (logits.argmax(1).cpu() == y.cpu())
    robust = correct.clone()
    per_attack, broken = {}, []
    parts = list(enumerate(batches(x, y, batch_size=batch_size)))  # batch i: its own draws
    if attack == "autoattack":
        aa = AttackSpec("autoattack", {"norm": norm, "eps": eps, "version": version,
                                       "steps": steps}, seed).create(model)
        for i, (xb, yb) in progress(parts, desc="AutoAttack", enabled=show_progress):
            aa(xb, yb, batch=i)
            broken += aa.broken_by
        robust = torch.tensor([b is None for b in broken])
        stages = list(aa.accuracy_after)  # "clean", then the attacks in order
        for i, stage in enumerate(stages[1:], 1):
            per_attack[stage] = sum(b is None or b not in stages[:i + 1]
                                    for b in broken) / len(x)
        name = f"autoattack-{version}"
    else:
        runs = [(loss, r) for loss in ("ce", "margin") for r in range(restarts)]
        for loss, r in progress(runs, desc="robust accuracy", enabled=show_progress):
            pgd = AttackSpec("pgd", {"eps": eps, "steps": steps, "norm": norm, "loss": loss},
                             seed + r).create(model)
            still = torch.cat([predict(model, pgd(xb, yb, batch=i), batch_size=batch_size)
                               .argmax(1).cpu() == yb.cpu() for i, (xb, yb) in parts])
            label = f"pgd{steps}-{loss}" + (f"-start{r}" if restarts > 1 else "")
            per_attack[label] = float(still.double().mean())
            broken = [label if b is None and not s else b for b, s in zip(
                broken or [None if c else "clean" for c in correct.tolist()], still.tolist(),
                strict=True)]
            robust &= still
        name = f"pgd{steps} ce+margin"
    return RobustAccuracy(accuracy=float(correct.double().mean()),
                          robust_accuracy=float(robust.double().mean()), n=len(x),
                          clean_correct=int(correct.sum()), robust_correct=int(robust.sum()),
                          eps=eps, per_attack=per_attack, attack=name, broken_by=broken)


def benchmark(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, threat_model: str = "Linf",
              eps: float, n_examples: int | None = None, device=None, batch_size: int = 500,
              version: str = "standard", seed: int = 0) -> RobustAccuracy:
    """Clean and robust accuracy under AutoAttack on ``n_examples`` of ``(x, y)`` (all by
    default), with counts and the seconds taken, as RobustBench's ``benchmark``. The
    examples are a class-stratified sample drawn with ``seed``
    (:func:`~transferability.data.tasks.sample_positions`), not the first ones: the first
    of data sorted by class are one class.

    ``threat_model``: ``"Linf"`` or ``"L2"``; ``device``: where to run (the model is moved
    there, as RobustBench does; default: where the model is).
    """
    norm = THREAT_MODELS[check_choice(threat_model, "threat_model", THREAT_MODELS)]
    x = check_images(x, "x")
    y = check_labels_tensor(y, "y", n=len(x))
    if n_examples is not None:
        n_examples = check_int(n_examples, "n_examples")
        if n_examples > len(x):
            raise ValueError(f"n_examples: expected at most the {len(x)} examples given, got "
                             f"{n_examples}")
        keep = torch.from_numpy(sample_positions(y.cpu().numpy(), n_examples, seed))
        x, y = x[keep.to(x.device)], y[keep.to(y.device)]
    if device is not None:
        model.to(torch.device(device))
    start = time.perf_counter()
    result = robust_accuracy(model, x, y, eps, attack="autoattack", norm=norm, version=version,
                             batch_size=batch_size, seed=seed, show_progress=False)
    return dataclasses.replace(result, seconds=time.perf_counter() - start)
