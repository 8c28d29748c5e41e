"""Ensembles of surrogates: one ``nn.Module`` that every attack, ``predict``,
``transfer_matrix`` and ``alpha`` accept.

Predictions average the members' logits (Liu et al., "Delving into Transferable
Adversarial Examples and Black-box Attacks", ICLR 2017). Attacks instead call
:meth:`Ensemble.attack_objective`, which combines logits or losses over all members, or
over ``sample`` members per step drawn from a shuffled cycle: with ``sample=1`` this is
LGV's "one collected model per iteration, shuffled" (Gubri et al., ECCV 2022).

Members run in a plain loop: on CPU, ``torch.vmap`` over stacked states
(``torch.func.stack_module_state``) measured 1.5–2.5× slower than the loop for the zoo's
``cnn`` (``python -m benchmarks ensemble``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .._validation import check_choice, check_int, check_same_device, check_seed
from ..utils import batch_seed

__all__ = ["Ensemble", "COMBINES"]

COMBINES = ("logits", "loss")

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Ensemble(nn.Module):
    """Average of ``models`` (each images in [0, 1] → logits with the same classes).

    Args:
        models: a non-empty sequence of ``nn.Module`` on one device, kept as ``members``.
        combine: how :meth:`attack_objective` joins the chosen members: ``"logits"``, the
            objective of their mean logits (Liu et al. 2017), or ``"loss"``, the mean of
            their objectives (the ensemble of losses, as in Dong et al. 2018).
        sample: ``None`` attacks all members at every step; ``k`` (1 ≤ k ≤ K) takes the next
            ``k`` members of a cycle over them, reshuffled when exhausted (LGV, Gubri et
            al. 2022, is ``sample=1``). Predictions always use every member.
        seed: seeds the shuffles; :meth:`reset` (called by every attack call) restarts them,
            from the attacked batch's own seed (:func:`~transferability.utils.batch_seed`).
    """

    def __init__(self, models: Sequence[nn.Module], *, combine: str = "logits",
                 sample: int | None = None, seed: int = 0):
        super().__init__()
        if isinstance(models, nn.Module) and not isinstance(models, nn.ModuleList):
            raise ValueError(f"models: expected a sequence of models, got one "
                             f"{type(models).__name__}; wrap it in a list")
        models = list(models) if isinstance(models, Iterable) else models
        if not isinstance(models, list) or not models:
            raise ValueError(f"models: expected a non-empty sequence of nn.Modules, got {models!r}")
        check_same_device(**{f"models[{i}]": m for i, m in enumerate(models)})
        self.members = nn.ModuleList(models)
        self.combine = check_choice(combine, "combine", COMBINES)
        self.sample = None if sample is None else check_int(sample, "sample",
                                                            maximum=len(models))
        self.seed = check_seed(seed)
        self._generator = torch.Generator()
        self.reset()

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> nn.Module:
        return self.members[i]

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}, sample={self.sample!r}, seed={self.seed!r}"

    def reset(self, batch: int | None = None) -> None:
        """Restart the shuffled cycle for batch ``batch`` of a run (attacks call it once per
        call): from ``batch_seed(seed, batch)``, ``seed`` itself for ``None`` or 0."""
        self._generator.manual_seed(batch_seed(self.seed, batch))
        self._cycle: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of all members' logits."""
        return torch.stack(self._logits(x, range(len(self.members)))).mean(0)

    def attack_objective(self, x: torch.Tensor, y: torch.Tensor,
                         objective: Objective) -> torch.Tensor:
        """The attack's summed ``objective(logits, y)`` on this step's chosen members."""
        chosen = range(len(self.members)) if self.sample is None else self._draw()
        logits = self._logits(x, chosen)
        if self.combine == "logits":
            return objective(torch.stack(logits).mean(0), y)
        return torch.stack([objective(z, y) for z in logits]).mean()

    def _draw(self) -> list[int]:
        """The next ``sample`` members of the shuffled cycle, no member twice in one draw."""
        k = self.sample
        chosen, self._cycle = self._cycle[:k], self._cycle[k:]
        if len(chosen) < k:  # cycle exhausted: reshuffle; this draw's members go last
            order = torch.randperm(len(self.members), generator=self._generator).tolist()
            order = [i for i in order if i not in chosen] + [i for i in order if i in chosen]
            need = k - len(chosen)
            chosen, self._cycle = chosen + order[:need], order[need:]
        return chosen

    def _logits(self, x: torch.Tensor, chosen: Iterable[int]) -> list[torch.Tensor]:
        outs = [self.members[i](x) for i in chosen]
        if len({o.shape[-1] for o in outs}) > 1:
            desc = ", ".join(f"models[{i}] has {o.shape[-1]}"
                             for i, o in zip(chosen, outs, strict=True))
            raise ValueError(f"models: members must have the same number of outputs; {desc}")
        return outs
