"""The surrogate × victim transfer matrix, with explicit denominators.

Adversarial examples are crafted once per surrogate (batch by batch) and shown to every
victim. Success is counted under two protocols, always with the counts behind the rate:

- ``"all"``: the victim misclassifies ``x_adv`` among all n samples;
- ``"both_correct"``: among the samples that both the surrogate and the victim classify
  correctly on clean ``x``, the fraction the victim misclassifies on ``x_adv`` (the
  protocol of the transfer papers, e.g. Liang et al. 2021; tools that divide by n mix clean
  errors into the transfer rate).

Names identify models: a name that is both a surrogate and a victim is the same model and
its cell is white-box success. Every surrogate's white-box success is kept either way, and
a surrogate whose white-box success is below 0.9 is flagged as *weak* in the table, the
records and the heatmap: its transfer numbers understate (the attack fails on the very model
it was made on, e.g. from masked gradients; try ``loss="margin"`` or more steps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._results import Result
from ._validation import (
    check_choice,
    check_images,
    check_int,
    check_labels_tensor,
    check_same_device,
)
from .attacks import AttackSpec, attack_batch, attack_factory, norms
from .data import dataset_from_spec, per_class
from .features import predict, with_head
from .jobs import job_kind
from .report import save_figure, write_csv, write_json
from .utils import batches
from .utils import progress as _progress

__all__ = ["PROTOCOLS", "TransferMatrix", "transfer_matrix"]

PROTOCOLS = ("both_correct", "all")
#: A surrogate whose white-box success (among its clean-correct samples) is below this is weak.
WEAK_WHITE_BOX = 0.9


def _rate(fooled: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, fooled / np.maximum(total, 1), np.nan)


@dataclass(frozen=True, eq=False)
class TransferMatrix(Result):
    """Transfer success per (surrogate, victim) pair under both protocols, with counts.

    Attributes:
        surrogates, victims: model names (rows, columns).
        n: number of samples attacked.
        fooled: S×V, victim wrong on ``x_adv`` (protocol ``"all"``, denominator ``n``).
        both_correct: S×V, samples both models classify correctly on clean ``x``.
        fooled_both_correct: S×V, of those, the victim wrong on ``x_adv``.
        clean_correct: per model name, samples classified correctly on clean ``x``.
        white_box_fooled: per surrogate, itself wrong on its own ``x_adv`` (out of ``n``).
        white_box_fooled_correct: the same among its clean-correct samples.
        attack: a description of the attack (its ``repr``).
    """

    surrogates: list[str]
    victims: list[str]
    n: int
    fooled: np.ndarray
    both_correct: np.ndarray
    fooled_both_correct: np.ndarray
    clean_correct: dict[str, int]
    white_box_fooled: np.ndarray
    white_box_fooled_correct: np.ndarray
    attack: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        shape = (len(self.surrogates), len(self.victims))
        for name in ("fooled", "both_correct", "fooled_both_correct"):
            arr = np.asarray(getattr(self, name), dtype=np.int64).reshape(shape)
            object.__setattr__(self, name, arr)
        for name in ("white_box_fooled", "white_box_fooled_correct"):
            arr = np.asarray(getattr(self, name), dtype=np.int64).reshape(-1)
            object.__setattr__(self, name, arr)

    # ---- numbers -------------------------------------------------------------------------
    def counts(self, protocol: str = "both_correct") -> tuple[np.ndarray, np.ndarray]:
        """``(fooled, denominator)``, two S×V integer arrays, for a protocol."""
        check_choice(protocol, "protocol", PROTOCOLS)
        if protocol == "all":
            return self.fooled, np.full_like(self.fooled, self.n)
        return self.fooled_both_correct, self.both_correct

    def rates(self, protocol: str = "both_correct") -> np.ndarray:
        """S×V success rates (NaN where the denominator is 0)."""
        return _rate(*self.counts(protocol))

    def white_box_counts(self, protocol: str = "both_correct") -> tuple[np.ndarray, np.ndarray]:
        """``(fooled, denominator)`` per surrogate against itself."""
        check_choice(protocol, "protocol", PROTOCOLS)
        if protocol == "all":
            return self.white_box_fooled, np.full_like(self.white_box_fooled, self.n)
        return (self.white_box_fooled_correct,
                np.array([self.clean_correct[s] for s in self.surrogates], dtype=np.int64))

    def white_box_rates(self, protocol: str = "both_correct") -> np.ndarray:
        """Each surrogate's success against itself (the ceiling for transfer)."""
        return _rate(*self.white_box_counts(protocol))

    def weak_surrogates(self, threshold: float = WEAK_WHITE_BOX) -> list[str]:
        """Surrogates whose white-box success among their clean-correct samples is below
        ``threshold``: their transfer rates understate what the attack could do."""
        rates = self.white_box_rates("both_correct")
        return [s for s, r in zip(self.surrogates, rates, strict=True)
                if not np.isnan(r) and r < threshold]

    def _weak_note(self) -> str:
        weak = self.weak_surrogates()
        return (f"weak surrogates (white-box success < {WEAK_WHITE_BOX}; their transfer rates "
                f"understate): {', '.join(weak)}" if weak else "")

    # ---- tables --------------------------------------------------------------------------
    def to_records(self) -> list[dict]:
        """One row per pair with counts and rates under both protocols.

        White-box rows (``white_box=True``) come first in the grid where a surrogate is
        also a victim, and are appended for surrogates that are not victims.
        """
        weak = set(self.weak_surrogates())

        def row(s: str, v: str, fooled: int, both: int, fooled_both: int) -> dict:
            return {"surrogate": s, "victim": v, "white_box": s == v,
                    "weak_surrogate": s in weak, "n": self.n,
                    "fooled": fooled, "rate_all": fooled / self.n if self.n else float("nan"),
                    "both_correct": both, "fooled_both_correct": fooled_both,
                    "rate_both_correct": fooled_both / both if both else float("nan")}

        rows = [row(s, v, int(self.fooled[i, j]), int(self.both_correct[i, j]),
                    int(self.fooled_both_correct[i, j]))
                for i, s in enumerate(self.surrogates) for j, v in enumerate(self.victims)]
        rows += [row(s, s, int(self.white_box_fooled[i]), self.clean_correct[s],
                     int(self.white_box_fooled_correct[i]))
                 for i, s in enumerate(self.surrogates) if s not in self.victims]
        return rows

    def to_frame(self):
        """The records as a pandas DataFrame (needs pandas, which is optional)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is installed in development
            raise ImportError("to_frame() needs pandas; use to_records() without it") from None
        return pd.DataFrame(self.to_records())

    def to_csv(self, path: str | Path) -> Path:
        """Write the records as CSV; returns the path."""
        return write_csv(self.to_records(), path)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every count (see :class:`~transferability._results.Result`), plus the derived
        rates and weak surrogates for readers of the JSON."""
        return {**super().to_dict(), "weak_surrogates": self.weak_surrogates(),
                "rates": {p: np.where(np.isnan(r := self.rates(p)), None, r).tolist()
                          for p in PROTOCOLS}}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON; returns the path."""
        return write_json(self.to_dict(), path)

    @classmethod
    def from_rows(cls, rows: list[TransferMatrix]) -> TransferMatrix:
        """One matrix from matrices of the same victims, samples and attack (one row per
        surrogate each: what one stored job measures)."""
        first = rows[0]
        for row in rows[1:]:
            if (row.victims, row.n, row.attack) != (first.victims, first.n, first.attack):
                raise ValueError("rows: expected rows with the same victims, samples and "
                                 "attack")

        def stack(name):
            return np.concatenate([getattr(r, name) for r in rows])
        return cls(surrogates=[s for r in rows for s in r.surrogates], victims=first.victims,
                   n=first.n, fooled=stack("fooled"), both_correct=stack("both_correct"),
                   fooled_both_correct=stack("fooled_both_correct"),
                   clean_correct={k: v for r in rows for k, v in r.clean_correct.items()},
                   white_box_fooled=stack("white_box_fooled"),
                   white_box_fooled_correct=stack("white_box_fooled_correct"),
                   attack=first.attack, meta=first.meta)

    @classmethod
    def from_json(cls, path: str | Path) -> TransferMatrix:
        """Read a file written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ---- display -------------------------------------------------------------------------
    def plot(self, path: str | Path, protocol: str = "both_correct") -> Path:
        """Save a heatmap of the rates, each cell annotated with rate and counts (PNG)."""
        from matplotlib.figure import Figure

        fooled, total = self.counts(protocol)
        rates = _rate(fooled, total)
        s, v = rates.shape
        fig = Figure(figsize=(1.6 + 1.3 * v, 1.2 + 0.8 * s), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(rates, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(s):
            for j in range(v):
                r = rates[i, j]
                text = f"{r:.2f}\n{fooled[i, j]}/{total[i, j]}" if total[i, j] else "n/a"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="black" if r > 0.6 else "white",
                        fontweight="bold" if self.surrogates[i] == self.victims[j] else None)
        ax.set_xticks(range(v), self.victims, rotation=30, ha="right")
        ax.set_yticks(range(s), self.surrogates)
        ax.set_xlabel("victim")
        ax.set_ylabel("surrogate")
        weak = self.weak_surrogates()
        ax.set_title(f"transfer success ({protocol.replace('_', ' ')})"
                     + (f"\nweak surrogates (white-box < {WEAK_WHITE_BOX}): {', '.join(weak)}"
                        if weak else ""), fontsize=10, **({"color": "darkred"} if weak else {}))
        fig.colorbar(image, ax=ax, label="success rate")
        return save_figure(fig, path, dpi=120)

    def format(self, protocol: str = "both_correct") -> str:
        """A plain-text table of ``rate (fooled/denominator)``, white-box in the last column."""
        fooled, total = self.counts(protocol)
        wb_fooled, wb_total = self.white_box_counts(protocol)

        def cell(f: int, t: int) -> str:
            return f"{f / t:.3f} ({f}/{t})" if t else f"  n/a ({f}/{t})"

        weak = set(self.weak_surrogates())
        header = ["surrogate \\ victim", *self.victims, "| white-box"]
        rows = [[s + (" (weak)" if s in weak else ""),
                 *(cell(fooled[i, j], total[i, j]) for j in range(len(self.victims))),
                 "| " + cell(wb_fooled[i], wb_total[i])]
                for i, s in enumerate(self.surrogates)]
        widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in [header, *rows]]
        title = (f"transfer success, protocol {protocol!r} (rate (fooled/denominator)), "
                 f"n={self.n}")
        return "\n".join([title, *lines, *([self._weak_note()] if weak else [])])

    def __str__(self) -> str:
        clean = ", ".join(f"{k} {v}/{self.n}" for k, v in self.clean_correct.items())
        parts = [f"attack: {self.attack}" if self.attack else "", f"clean correct: {clean}",
                 self.format("both_correct"), self.format("all")]
        return "\n".join(p for p in parts if p)


def _check_models(models, name: str) -> dict[str, nn.Module]:
    if not isinstance(models, Mapping) or not models:
        raise ValueError(f"{name}: expected a non-empty mapping from name to model")
    for key, model in models.items():
        if not isinstance(key, str) or not isinstance(model, nn.Module):
            raise ValueError(f"{name}: expected str -> torch.nn.Module, got "
                             f"{key!r} -> {type(model).__name__}")
    return dict(models)


def _predicted_labels(model: nn.Module, x: torch.Tensor, name: str, y_max: int,
                      batch_size: int) -> torch.Tensor:
    logits = predict(model, x, batch_size=batch_size, name=name)
    if logits.shape[1] <= y_max:
        raise ValueError(f"y: labels go up to {y_max} but model {name!r} has outputs of shape "
                         f"{tuple(logits.shape)}")
    return logits.argmax(dim=1).cpu()


def _crafted_and_fooled(surrogates, victims, x, y, make_attack, y_max: int, batch_size: int,
                        show_progress, quantize: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Each surrogate's adversarial examples, batch by batch (on the 8-bit grid with
    ``quantize``), shown to every victim and to itself: which images fool each victim
    (S×V×N) and the surrogate itself (S×N), and the attack's description."""
    S, V = len(surrogates), len(victims)
    wrong = torch.zeros(S, V, len(x), dtype=torch.bool)
    wrong_self = torch.zeros(S, len(x), dtype=torch.bool)
    description = ""
    n_batches = -(-len(x) // batch_size)
    bar = _progress(total=S * n_batches, desc="transfer matrix", enabled=show_progress,
                    unit="batch")
    try:
        for i, (s_name, s_model) in enumerate(surrogates.items()):
            bar.set_postfix_str(s_name)
            adversary = make_attack(s_model)
            if getattr(adversary, "targeted", False):
                raise ValueError("attack: transfer_matrix measures untargeted transfer; "
                                 "got a targeted attack")
            description = description or repr(adversary).replace("\n", " ")
            start = 0
            for b, (xb, yb) in enumerate(batches(x, y, batch_size=batch_size)):
                x_adv = attack_batch(adversary, xb, yb, b)
                if quantize:  # what a saved PNG holds, still in the ε-ball
                    x_adv = norms.quantize(xb, x_adv.to(xb.device), adversary.eps,
                                           adversary.norm)
                stop = start + len(xb)

                def fooled(model, name, x_adv=x_adv, yb=yb):
                    return _predicted_labels(model, x_adv, name, y_max, batch_size) != yb

                for j, (v_name, v_model) in enumerate(victims.items()):
                    wrong[i, j, start:stop] = fooled(v_model, v_name)
                if s_name in victims:
                    wrong_self[i, start:stop] = wrong[i, list(victims).index(s_name), start:stop]
                else:
                    wrong_self[i, start:stop] = fooled(s_model, s_name)
                start = stop
                bar.update(1)
    finally:
        bar.close()

    return wrong, wrong_self, description


def transfer_matrix(surrogates: Mapping[str, nn.Module], victims: Mapping[str, nn.Module],
                    x: torch.Tensor, y: torch.Tensor,
                    attack: str | AttackSpec | Callable[[nn.Module], Callable] = "pgd", *,
                    batch_size: int = 128, quantize: bool = False,
                    show_progress: bool | None = None) -> TransferMatrix:
    """Craft untargeted adversarial examples on each surrogate and test them on every victim.

    Args:
        surrogates, victims: mappings from name to model (logits out, inputs in [0, 1]).
        x, y: images N×C×H×W in [0, 1] and their true labels.
        attack: an :class:`~transferability.attacks.AttackSpec` (e.g.
            ``AttackSpec("pgd", {"eps": 0.1, "steps": 10}, seed=0)``; a registered name alone
            uses the attack's defaults) built for each surrogate, or a factory ``(model) ->
            attack`` whose result is called as ``attack(x, y)`` (a torchattacks attack works
            too).
        batch_size: samples per attack call; batch i draws its own randomness (the
            attack's ``seed`` and i, :func:`~transferability.attacks.attack_batch`).
        quantize: 8-bit images, as an image set is: the clean images put on the grid
            ``k/255`` first, every adversarial example rounded onto it inside its ε-ball
            (:func:`~transferability.attacks.norms.quantize`; the attack needs ``eps``
            and ``norm``), as the audit does.
        show_progress: a progress bar; ``None`` shows it when stderr is a terminal.

    Each surrogate's adversarial examples are computed once per batch and reused for every
    victim (and for its own white-box success); they are not kept in memory.
    """
    x = check_images(x, "x")
    if quantize:  # the clean images on the 8-bit grid first
        x = torch.round(x * norms.LEVELS) / norms.LEVELS
    y = check_labels_tensor(y, "y", n=len(x)).cpu()
    if len(x) == 0:
        raise ValueError("x: is empty")
    batch_size = check_int(batch_size, "batch_size")
    surrogates = _check_models(surrogates, "surrogates")
    victims = _check_models(victims, "victims")
    for name in surrogates.keys() & victims.keys():
        if surrogates[name] is not victims[name]:
            raise ValueError(f"victims: name {name!r} refers to a different model than in "
                             "surrogates; names identify models")
    make_attack = attack_factory(attack)
    y_max = int(y.max())
    models = {**surrogates, **victims}
    check_same_device(**models)
    clean = {name: _predicted_labels(m, x, name, y_max, batch_size) == y
             for name, m in models.items()}

    wrong, wrong_self, description = _crafted_and_fooled(
        surrogates, victims, x, y, make_attack, y_max, batch_size, show_progress, quantize)
    s_clean = torch.stack([clean[s] for s in surrogates])          # S×N
    v_clean = torch.stack([clean[v] for v in victims])             # V×N
    both = s_clean[:, None, :] & v_clean[None, :, :]               # S×V×N
    return TransferMatrix(
        surrogates=list(surrogates), victims=list(victims), n=len(x),
        fooled=wrong.sum(-1).numpy(), both_correct=both.sum(-1).numpy(),
        fooled_both_correct=(wrong & both).sum(-1).numpy(),
        clean_correct={name: int(c.sum()) for name, c in clean.items()},
        white_box_fooled=wrong_self.sum(-1).numpy(),
        white_box_fooled_correct=(wrong_self & s_clean).sum(-1).numpy(),
        attack=description)


def _linear(weights: Mapping[str, torch.Tensor]) -> nn.Linear:
    """A linear layer holding ``weights`` (``{"weight": ..., "bias": ...}``, a probe's head)."""
    head = nn.Linear(weights["weight"].shape[1], weights["weight"].shape[0])
    with torch.no_grad():
        head.weight.copy_(weights["weight"])
        head.bias.copy_(weights["bias"])
    return head


@job_kind("transfer_row")
def transfer_row_job(config: dict, inputs: dict) -> dict:
    """One row of a transfer matrix (a :class:`TransferMatrix` dict): examples crafted on
    the surrogate ``config["surrogate"]`` from ``per_class`` images a class of the data
    (drawn with ``seed``), shown to every ``victim:NAME`` input.

    The data is the ``data`` input's dataset, or the test split of the spec
    ``config["data"]``. The surrogate is the victim of that name (its cell is then
    white-box success) or the ``surrogate`` input. A ``head:NAME`` input (a probe's
    ``weight`` and ``bias``) puts that head on victim NAME's features at ``layer``,
    ``layer_input``. The attack is ``config["attack"]`` (an
    :class:`~transferability.attacks.AttackSpec`'s ``to_dict()``), or the factory given as
    the ``attack`` input.
    """
    victims = {}
    for key, output in inputs.items():
        if key.startswith("victim:"):
            name = key.removeprefix("victim:")
            model = output.artifact
            if f"head:{name}" in inputs:
                model = with_head(model, _linear(inputs[f"head:{name}"].artifact),
                                  layer=config.get("layer"),
                                  layer_input=config.get("layer_input", False)).eval()
            victims[name] = model
    data = inputs["data"].artifact if "data" in inputs else dataset_from_spec(config["data"],
                                                                              "test")
    data = per_class(data, config["per_class"], seed=config["seed"])
    name = config["surrogate"]
    surrogate = victims[name] if name in victims else inputs["surrogate"].artifact
    attack = (inputs["attack"].artifact if "attack" in inputs
              else AttackSpec.of(config["attack"]))
    return transfer_matrix({name: surrogate}, victims, data.x, data.y, attack=attack,
                           show_progress=False).to_dict()
