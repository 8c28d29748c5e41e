"""The surrogate study: how training controls adversarial transferability.

Gubri et al. (2022, 2023) show that the surrogate's training decides how well its
adversarial examples transfer: early stopping beats full training, flat neighbourhoods
(SAM with a large radius, "l-SAM") beat both, and LGV's collected weights help; Adam et al.
(2019) show the reverse control, a gradient-alignment penalty that makes two models'
examples transfer less to each other. This study measures all of that on bundled data:

(a) transfer success per epoch of standard training, beside the learning rate;
(b) the fully trained surrogate against its best early-stopped epoch;
(c) SAM across a ρ grid (ρ = 0.05 is SAM, larger is l-SAM);
(d) LGV against the model it starts from;
(e) each surrogate's sharpness (Hessian trace) against its transfer success;
(f) a pair trained with and without the alignment penalty: transfer between its members.

Surrogates are ``cnn`` models trained with ``len(seeds)`` seeds; victims are other
architectures with their own seeds (``lenet``, ``resnet``, ``mlp``) that no surrogate
shares. The attack follows Gubri et al.: L∞ BIM, 50 steps of ε/10. Success is counted over
the samples that both models classify correctly, with counts, and averaged over victims.
Every model is a zoo entry, so a rerun trains nothing.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import torch

from ._results import Result
from ._validation import check_int, check_positive, check_seed
from .attacks import attack_factory, with_seed
from .data import dataset_from_spec, per_class
from .models import Ensemble
from .report import format_table
from .sharpness import sharpness
from .stats import bootstrap_ci, spearman
from .training import ModelPair, evaluate, fit, lgv_members
from .transfer_matrix import transfer_matrix
from .zoo import build_zoo

__all__ = ["SurrogateStudyResult", "surrogate_study", "plot_surrogate_study", "QUICK", "FULL",
           "GUBRI_ATTACK"]

log = logging.getLogger("transferability")

#: The full study (its own command) and the quick one of ``make demo``.
FULL = {"seeds": (0, 1, 2), "epochs": 8, "n_per_class": 200, "rhos": (0.05, 0.1, 0.2, 0.4),
        "lgv_epochs": 2, "lgv_per_epoch": 4, "attack_options": {"eps": 0.2, "steps": 50},
        "attack_per_class": 20, "pair_epochs": 4}
QUICK = {"seeds": (0, 1), "epochs": 4, "n_per_class": 80, "rhos": (0.05, 0.1),
         "lgv_epochs": 1, "lgv_per_epoch": 4, "attack_options": {"eps": 0.2, "steps": 20},
         "attack_per_class": 8, "pair_epochs": 2}
#: A surrogate whose test accuracy stays below this share of the way from chance to 1 did
#: not train (too large a ρ): it is reported, but left out of the claims and correlations.
DIVERGED = 0.5
#: Gubri et al.'s attack: L∞ BIM, 50 steps of ε/10 (the step follows ε unless given).
GUBRI_ATTACK = MappingProxyType({"eps": 0.2, "steps": 50})
VICTIMS = ("lenet", "resnet", "mlp")


@dataclass(frozen=True)
class SurrogateStudyResult(Result):
    """Per-surrogate rows, per-epoch rows, the summary by kind, the sharpness correlation,
    the pair experiment, and the claims stated plainly."""

    rows: list[dict]
    per_epoch: list[dict]
    summary: list[dict]
    sharpness: dict
    pair: list[dict]
    claims: list[str]
    settings: dict = field(default_factory=dict)

    def format(self) -> str:
        epochs = sorted({r["epoch"] for r in self.per_epoch})
        curve = [{"epoch": e, "lr": np.mean([r["lr"] for r in self.per_epoch if r["epoch"] == e]),
                  **_spread([r["transfer"] for r in self.per_epoch if r["epoch"] == e])}
                 for e in epochs]
        parts = ["(a) standard training: transfer success per epoch (mean ± std over seeds)",
                 format_table(curve), "",
                 "(b-d) surrogates by kind (transfer = mean over victims, both-correct "
                 "protocol; ± std over seeds; diverged = seeds that did not train)",
                 format_table(self.summary), "",
                 "(e) sharpness (Hessian trace) vs transfer: "
                 + (f"Spearman {self.sharpness['spearman']:+.2f} "
                    f"[{self.sharpness['low']:+.2f}, {self.sharpness['high']:+.2f}] over "
                    f"{self.sharpness['n']} surrogates" if self.sharpness else "-"), "",
                 "(f) a pair trained with and without the gradient-alignment penalty",
                 format_table(self.pair), "", "claims:", *[f"- {c}" for c in self.claims]]
        return "\n".join(parts)


def _spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"transfer": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "n": len(values)}


def _specs(task, seeds, epochs, n_per_class, rhos) -> tuple[dict, dict]:
    data = {"dataset": task, "n_per_class": n_per_class}
    base = {"epochs": epochs, "lr": 0.05, "schedule": "step", "batch_size": 64}
    models = []
    for seed in seeds:
        models.append({"name": f"sgd-s{seed}", "arch": "cnn", "data": data,
                       "train": {**base, "seed": seed, "snapshot_every": 1}})
        for rho in rhos:
            method = "sam" if rho <= 0.05 else "lsam"
            models.append({"name": f"{method}-r{rho}-s{seed}", "arch": "cnn", "data": data,
                           "train": {**base, "seed": seed, "method": method, "rho": rho}})
    victims = [{"name": f"victim-{arch}", "arch": arch, "data": data,
                "train": {**base, "seed": 100 + i}}
               for i, arch in enumerate(VICTIMS)]
    return {"models": models}, {"models": victims}


def _transfer(surrogates: dict, victims: dict, x, y, attack, attack_options):
    """Mean transfer success over victims (both-correct) per surrogate, with white-box."""
    matrix = transfer_matrix(surrogates, victims, x, y, attack=attack,
                             attack_options=attack_options, show_progress=False)
    fooled, total = matrix.counts("both_correct")
    rates = matrix.rates("both_correct")
    wb = matrix.white_box_rates("both_correct")
    return {s: {"transfer": float(np.nanmean(rates[i])), "fooled": int(fooled[i].sum()),
                "pairs": int(total[i].sum()), "white_box": float(wb[i]),
                "weak": s in matrix.weak_surrogates()}
            for i, s in enumerate(matrix.surrogates)}


def _swa(members: list) -> torch.nn.Module:
    """The average of the members' weights (LGV-SWA), for its sharpness."""
    model = copy.deepcopy(members[0])
    state = {k: torch.stack([m.state_dict()[k].float() for m in members]).mean(0).to(v.dtype)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return model


def surrogate_study(task: str = "mnist", *, seeds=FULL["seeds"], epochs: int = FULL["epochs"],
                    n_per_class: int = FULL["n_per_class"], rhos=FULL["rhos"],
                    lgv_epochs: int = FULL["lgv_epochs"],
                    lgv_per_epoch: int = FULL["lgv_per_epoch"], attack="bim",
                    attack_options: dict | None = None,
                    attack_per_class: int = FULL["attack_per_class"],
                    pair_epochs: int = FULL["pair_epochs"], cache_dir=None,
                    show_progress: bool | None = None) -> SurrogateStudyResult:
    """Run the study (see the module docstring) on ``task`` and return its tables.

    ``attack_options`` go over :data:`GUBRI_ATTACK` (L∞ BIM, ε = 0.2, 50 steps of ε/10)
    for a named ``attack``; a factory is used as given.
    """
    seeds = tuple(check_seed(s, "seeds") for s in seeds)
    if not seeds or not rhos:
        raise ValueError("seeds, rhos: need at least one value each")
    rhos = tuple(check_positive(r, "rhos") for r in rhos)
    epochs = check_int(epochs, "epochs", minimum=2)
    check_int(attack_per_class, "attack_per_class")
    if isinstance(attack, str):
        attack_options = {**GUBRI_ATTACK, **(attack_options or {})}
        eps = check_positive(attack_options["eps"], "attack_options['eps']")
        attack_options = with_seed(attack, {"alpha": eps / 10, **attack_options}, seeds[0])
    attack_factory(attack, attack_options)  # checks them before any training
    settings = {"task": task, "seeds": list(seeds), "epochs": epochs,
                "n_per_class": n_per_class, "rhos": list(rhos), "lgv_epochs": lgv_epochs,
                "lgv_per_epoch": lgv_per_epoch, "attack_per_class": attack_per_class,
                "attack": attack if isinstance(attack, str) else repr(attack),
                "attack_options": dict(attack_options or {})}
    surrogate_spec, victim_spec = _specs(task, seeds, epochs, n_per_class, rhos)
    log.info("  surrogates: %d cnn models; victims: %s", len(surrogate_spec["models"]),
             ", ".join(VICTIMS))
    zoo = build_zoo(surrogate_spec, cache_dir, show_progress=show_progress)
    victims = dict(build_zoo(victim_spec, cache_dir, show_progress=show_progress))
    train = dataset_from_spec({"dataset": task, "n_per_class": n_per_class}, "train")
    test = dataset_from_spec(task, "test")
    probe = per_class(test, attack_per_class, seed=0)

    # (a, b): every epoch of standard training
    log.info("  (a) transfer per epoch of standard training")
    per_epoch, snapshots = [], {}
    for seed in seeds:
        name = f"sgd-s{seed}"
        history = zoo[name].meta["history"]
        for epoch, model in zoo.snapshots(name).items():
            snapshots[f"{name}@{epoch}"] = model
            per_epoch.append({"seed": seed, "epoch": epoch, "lr": history[epoch - 1]["lr"],
                              "test_acc": history[epoch - 1]["eval_acc"]})
    rates = _transfer(snapshots, victims, probe.x, probe.y, attack, attack_options)
    for row in per_epoch:
        row.update(rates[f"sgd-s{row['seed']}@{row['epoch']}"])

    # (c, d): SAM / l-SAM and LGV
    log.info("  (c) SAM across rho, (d) LGV")
    rows = []
    surrogates = {}
    for seed in seeds:
        best = max((r for r in per_epoch if r["seed"] == seed), key=lambda r: r["transfer"])
        rows.append({"kind": "early stopped", "seed": seed, "rho": None,
                     "epoch": best["epoch"], "model": f"sgd-s{seed}@{best['epoch']}"})
        rows.append({"kind": "fully trained", "seed": seed, "rho": None, "epoch": epochs,
                     "model": f"sgd-s{seed}@{epochs}"})
        for rho in rhos:
            method = "sam" if rho <= 0.05 else "lsam"
            name = f"{method}-r{rho}-s{seed}"
            surrogates[name] = zoo[name]
            rows.append({"kind": f"{'SAM' if method == 'sam' else 'l-SAM'} rho={rho}",
                         "seed": seed, "rho": rho, "epoch": epochs, "model": name})
        start = copy.deepcopy(zoo[f"sgd-s{seed}"])
        history = fit(start, train, method="lgv", per_epoch=lgv_per_epoch, epochs=lgv_epochs,
                      lr=0.05, batch_size=64, seed=seed, show_progress=show_progress,
                      desc=f"lgv-s{seed}")
        members = lgv_members(start, history.extras["members"])
        surrogates[f"lgv-s{seed}"] = Ensemble(members, sample=1, seed=seed)
        rows.append({"kind": f"LGV ({len(members)} models)", "seed": seed, "rho": None,
                     "epoch": epochs + lgv_epochs, "model": f"lgv-s{seed}"})
        surrogates[f"lgv-swa-s{seed}"] = _swa(members)
    rates = {**rates, **_transfer(surrogates, victims, probe.x, probe.y, attack,
                                  attack_options)}
    models = {**snapshots, **surrogates}
    chance = 1 / test.num_classes
    for row in rows:
        row.update(rates[row["model"]])
        row["test_acc"] = evaluate(models[row["model"]], test)[0]
        row["diverged"] = row["test_acc"] < DIVERGED * (1 - chance) + chance

    # (e): sharpness of every single-model surrogate (LGV through its weight average)
    log.info("  (e) sharpness (Hessian trace) of each surrogate")
    sharp_x, sharp_y = train.x[:256], train.y[:256]
    for row in rows:
        model = surrogates.get(f"lgv-swa-s{row['seed']}") if row["model"].startswith("lgv") \
            else models[row["model"]]
        row["sharpness"] = sharpness(model, sharp_x, sharp_y, "hessian_trace", samples=10,
                                     seed=row["seed"]).value
    trained = [r for r in rows if not r["diverged"]]
    xs, ys = [r["sharpness"] for r in trained], [r["transfer"] for r in trained]
    sharp = {}
    if len(trained) >= 3:
        low, high = bootstrap_ci(spearman, xs, ys, seed=0)
        sharp = {"spearman": spearman(xs, ys), "low": low, "high": high, "n": len(trained)}

    # (f): the pair with and without the alignment penalty
    log.info("  (f) a pair trained with and without the gradient-alignment penalty")
    pair_rows = []
    for lam in (0.0, 5.0):
        torch.manual_seed(seeds[0])
        pair = ModelPair(copy.deepcopy(victims["victim-mlp"]).train(),
                         copy.deepcopy(victims["victim-lenet"]).train())
        for p in pair.parameters():
            p.requires_grad_(True)
        fit(pair, train, method="gradient_alignment_penalty", lam=lam, epochs=pair_epochs,
            lr=0.02, batch_size=64, seed=seeds[0], show_progress=show_progress,
            desc=f"pair lam={lam}")
        members = {"a": pair.model_a.eval(), "b": pair.model_b.eval()}
        matrix = transfer_matrix(members, members, probe.x, probe.y, attack=attack,
                                 attack_options=attack_options, show_progress=False)
        r = matrix.rates("both_correct")
        pair_rows.append({"lam": lam, "a_to_b": float(r[0, 1]), "b_to_a": float(r[1, 0]),
                          "acc_a": evaluate(members["a"], test)[0],
                          "acc_b": evaluate(members["b"], test)[0]})

    summary = _summary(rows)
    claims = _claims(summary, pair_rows, sharp)
    return SurrogateStudyResult(rows, per_epoch, summary, sharp, pair_rows, claims, settings)


def _summary(rows: list[dict]) -> list[dict]:
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    out = []
    for kind in kinds:
        group = [r for r in rows if r["kind"] == kind]
        out.append({"kind": kind, **_spread([r["transfer"] for r in group]),
                    "test_acc": float(np.mean([r["test_acc"] for r in group])),
                    "sharpness": float(np.mean([r["sharpness"] for r in group])),
                    "diverged": sum(r["diverged"] for r in group)})
    return out


def _claims(summary: list[dict], pair: list[dict], sharp: dict) -> list[str]:
    by = {s["kind"]: s for s in summary}
    full, early = by["fully trained"]["transfer"], by["early stopped"]["transfer"]
    lsam = max((s for s in summary if s["kind"].startswith("l-SAM") and not s["diverged"]),
               key=lambda s: s["transfer"], default=None)
    lgv = next(s for s in summary if s["kind"].startswith("LGV"))
    claims = []
    if lsam is not None:
        held = lsam["transfer"] > early > full
        claims.append(f"Gubri's ordering l-SAM > early stopping > full training "
                      f"{'holds' if held else 'does not hold'} here: best {lsam['kind']} "
                      f"{lsam['transfer']:.3f}, early stopped {early:.3f}, fully trained "
                      f"{full:.3f}.")
    claims.append(f"LGV {'improves' if lgv['transfer'] > full else 'does not improve'} over "
                  f"the model it starts from: {lgv['transfer']:.3f} vs {full:.3f}.")
    plain, penalised = pair
    less = penalised["a_to_b"] + penalised["b_to_a"] < plain["a_to_b"] + plain["b_to_a"]
    claims.append(
        f"Adam's effect {'holds' if less else 'does not hold'}: with the penalty the members' "
        f"examples transfer {penalised['a_to_b']:.3f} / {penalised['b_to_a']:.3f} (a→b / b→a) "
        f"against {plain['a_to_b']:.3f} / {plain['b_to_a']:.3f} without, at clean accuracy "
        f"{penalised['acc_a']:.3f} / {penalised['acc_b']:.3f} against "
        f"{plain['acc_a']:.3f} / {plain['acc_b']:.3f}.")
    if sharp and not math.isnan(sharp["spearman"]):
        verdict = "transfer better" if sharp["spearman"] < 0 else "do not transfer better"
        claims.append(f"Flatter surrogates {verdict}: "
                      f"Spearman(sharpness, transfer) = {sharp['spearman']:+.2f} "
                      f"[{sharp['low']:+.2f}, {sharp['high']:+.2f}].")
    return claims


def plot_surrogate_study(result: SurrogateStudyResult, out_dir) -> list:
    """Three PNGs: transfer per epoch beside the learning rate, transfer against ρ, and
    sharpness against transfer."""
    from pathlib import Path

    from matplotlib.figure import Figure

    from .report import save_figure

    out = Path(out_dir)
    files = []
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for seed in sorted({r["seed"] for r in result.per_epoch}):
        rows = sorted((r for r in result.per_epoch if r["seed"] == seed), key=lambda r: r["epoch"])
        ax.plot([r["epoch"] for r in rows], [r["transfer"] for r in rows], marker="o",
                label=f"seed {seed}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("transfer success (both correct)")
    lr = ax.twinx()
    first = sorted((r for r in result.per_epoch if r["seed"] == result.per_epoch[0]["seed"]),
                   key=lambda r: r["epoch"])
    lr.step([r["epoch"] for r in first], [r["lr"] for r in first], color="grey", where="post",
            linestyle="--", label="learning rate")
    lr.set_ylabel("learning rate (dashed)")
    ax.legend(fontsize=7)
    ax.set_title("(a) transfer per epoch of standard training", fontsize=10)
    files.append(save_figure(fig, out / "transfer_vs_epoch.png"))

    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    rhos = sorted({r["rho"] for r in result.rows if r["rho"] is not None})
    means = [np.mean([r["transfer"] for r in result.rows if r["rho"] == rho]) for rho in rhos]
    stds = [np.std([r["transfer"] for r in result.rows if r["rho"] == rho]) for rho in rhos]
    ax.errorbar(rhos, means, yerr=stds, marker="o", capsize=3, label="SAM / l-SAM")
    for kind, style in (("early stopped", ":"), ("fully trained", "--")):
        ax.axhline(np.mean([r["transfer"] for r in result.rows if r["kind"] == kind]),
                   linestyle=style, color="grey", label=kind)
    ax.set_xscale("log")
    ax.set_xlabel("SAM radius ρ")
    ax.set_ylabel("transfer success")
    ax.legend(fontsize=7)
    ax.set_title("(c) transfer against ρ", fontsize=10)
    files.append(save_figure(fig, out / "transfer_vs_rho.png"))

    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for kind in dict.fromkeys(r["kind"] for r in result.rows):
        group = [r for r in result.rows if r["kind"] == kind]
        ax.scatter([r["sharpness"] for r in group], [r["transfer"] for r in group], label=kind,
                   s=18)
    ax.set_xscale("log")
    ax.set_xlabel("sharpness (Hessian trace)")
    ax.set_ylabel("transfer success")
    ax.legend(fontsize=6)
    ax.set_title("(e) sharpness against transfer", fontsize=10)
    files.append(save_figure(fig, out / "sharpness_vs_transfer.png"))
    return files
