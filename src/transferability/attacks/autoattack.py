"""AutoAttack (Croce & Hein, ICML 2020): an ensemble of parameter-free attacks, each run
only on the points still robust, with the checks of :mod:`.checks`."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_choice, check_int
from .apgd import APGD
from .apgdt import APGDT
from .base import Attack
from .checks import (
    check_black_box,
    check_randomness,
    check_softmax_output,
    check_zero_gradients,
)
from .fab import FABT
from .registry import register_attack
from .square import Square

__all__ = ["AutoAttack", "VERSIONS"]

VERSIONS = ("standard", "plus", "rand")


@register_attack("autoattack", randomized=True, grads_per_step=None, quick={"queries": 3})
class AutoAttack(Attack):
    """AutoAttack: its attacks in sequence, each on the points no earlier one broke.

    ``standard``: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5,000 queries).
    ``plus``: APGD-CE and APGD-DLR with 5 restarts, Square with 5 restarts, APGD-T, FAB-T.
    ``rand``, for randomised models: APGD-CE and APGD-DLR with gradients averaged over 20
    draws (expectation over transformation). A model with fewer than 4
    classes gets APGD-DLR in place of the targeted attacks (DLR needs 3 classes); with 2
    classes, APGD-CE, FAB-T and Square only.

    Every call runs the checks of :mod:`~transferability.attacks.checks` (softmax output,
    zero gradients, randomness; after the attacks, a black box beating the white boxes) and
    records, in :attr:`broken_by` and :attr:`accuracy_after`, which attack broke each point
    and the robust accuracy after each attack.

    Args:
        norm: ``"linf"`` or ``"l2"``.
        eps: radius of the ball (> 0).
        version: ``"standard"``, ``"plus"`` or ``"rand"``.
        steps: iterations of APGD and FAB (100); queries: Square's budget (5,000).
        n_targets: target classes of APGD-T and FAB-T (9).
        seed: seeds every component (0); a call's ``batch`` goes on to each of them.
    """

    def __init__(self, model: nn.Module, norm: str = "linf", eps: float = 8 / 255,
                 version: str = "standard", *, steps: int = 100, queries: int = 5000,
                 n_targets: int = 9, seed: int = 0, **options):
        super().__init__(model, eps, norm=norm, seed=seed, **options)
        if self.targeted or self.loss != "ce" or self.input_transform is not None:
            raise ValueError("targeted: AutoAttack is untargeted, with its own losses and no "
                             "input transform")
        self.version = check_choice(version, "version", VERSIONS)
        self.steps = check_int(steps, "steps")
        self.queries = check_int(queries, "queries", maximum=10**7)
        self.n_targets = check_int(n_targets, "n_targets", maximum=1000)
        self.broken_by: list[str | None] = []
        self.accuracy_after: dict[str, float] = {}
        self._batch: int | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
                 batch: int | None = None) -> torch.Tensor:
        self._batch = batch  # the components draw that batch's randomness too
        return super().__call__(x, y, batch=batch)

    def components(self, num_classes: int) -> dict[str, Attack]:
        """The attacks of ``version``, in order, for a model with ``num_classes`` outputs."""
        m, eps, steps = self.model, self.eps, self.steps
        common = {"norm": self.norm, "seed": self.seed}
        plus = self.version == "plus"
        if self.version == "rand":
            attacks = {"apgd-ce": APGD(m, eps, steps, eot_iter=20, **common),
                       "apgd-dlr": APGD(m, eps, steps, loss="dlr", eot_iter=20, **common)}
        else:
            restarts = 5 if plus else 1
            attacks = {"apgd-ce": APGD(m, eps, steps, restarts=restarts, **common)}
            if plus or num_classes < 4:
                attacks["apgd-dlr"] = APGD(m, eps, steps, loss="dlr", restarts=restarts,
                                           **common)
            if plus:
                attacks["square"] = Square(m, eps, self.queries, restarts=5, **common)
            if num_classes >= 4:
                attacks["apgd-t"] = APGDT(m, eps, steps, n_targets=self.n_targets, **common)
            attacks["fab-t"] = FABT(m, eps, steps, n_targets=self.n_targets, **common)
            if not plus:
                attacks["square"] = Square(m, eps, self.queries, **common)
        if num_classes < 3:
            attacks.pop("apgd-dlr", None)
        return attacks

    def perturb(self, x, y, generator):
        with torch.no_grad():
            logits = self.model(x)
        check_softmax_output(logits)
        if self.version != "rand":
            check_randomness(self.model, x)
        robust = logits.argmax(1) == y
        if robust.any():
            check_zero_gradients(self.model, x[robust], y[robust])
        broken: list[str | None] = [None if r else "clean" for r in robust.tolist()]
        accuracy = {"clean": float(robust.double().mean())}
        x_adv = x.clone()
        for name, attack in self.components(logits.shape[1]).items():
            idx = robust.nonzero().squeeze(1)
            if len(idx):
                adv = attack(x[idx], y[idx], batch=self._batch)
                with torch.no_grad():
                    hit = self.model(adv).argmax(1) != y[idx]
                x_adv[idx[hit]], robust[idx[hit]] = adv[hit], False
                for i in idx[hit].tolist():
                    broken[i] = name
            accuracy[name] = float(robust.double().mean())
        check_black_box(accuracy)
        self.broken_by, self.accuracy_after = broken, accuracy
        return x_adv
