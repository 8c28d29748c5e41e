"""The surrogate study: how training controls adversarial transferability.

Gubri et al. (2022, 2023) show that the surrogate's training decides how well its
adversarial examples transfer: early stopping beats full training, flat neighbourhoods
(SAM with a large radius, "l-SAM") beat both, and LGV's collected weights help; Adam et al.
(2019) show the reverse control, a gradient-alignment penalty that makes two models'
examples transfer less to each other. This study measures all of that on bundled data:

(a) transfer success per epoch of standard training, beside the learning rate;
(b) the fully trained surrogate against its best early-stopped epoch (of those that trained);
(c) SAM across a ρ grid (ρ = 0.05 is SAM, larger is l-SAM);
(d) LGV against the model it starts from;
(e) each surrogate's sharpness (Hessian trace) against its transfer success;
(f) a pair trained with and without the alignment penalty: transfer between its members.

Surrogates are ``cnn`` models trained with ``len(seeds)`` seeds; victims are other
architectures with their own seeds (``lenet``, ``resnet``, ``mlp``) that no surrogate
shares. The attack follows Gubri et al.: L∞ BIM, 50 steps of ε/10. Success is counted over
the samples that both models classify correctly, with counts, and averaged over victims.

The study is a graph of jobs (:mod:`transferability.jobs`) kept in a results store: one
per model trained (zoo ``train`` jobs, ``surrogate_lgv``, ``surrogate_pair``), per epoch
snapshot, per transfer-matrix row (the shared ``transfer_row`` kind: one surrogate against
every victim), per test accuracy and per sharpness measurement, and a final
``surrogate_study`` job that assembles the tables. A rerun computes nothing; an
interrupted one resumes.
"""

from __future__ import annotations

import copy
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .._files import quarantine
from .._results import Result
from .._validation import Each, Integer, OneOf, Positive, Seed, Text
from ..attacks import AttackRule, AttackSpec
from ..data import check_per_class, dataset_from_spec, dataset_info, family_of, per_class
from ..jobs import Given, Job, Output, ResultStore, job_kind, open_store, run_jobs
from ..models import CheckpointError, Ensemble, load_checkpoint
from ..sharpness import sharpness
from ..stats import Claim, bootstrap_ci, claim, spearman
from ..training import SCHEDULES, ModelPair, Snapshot, evaluate, fit, lgv_members
from ..transfer_matrix import TransferMatrix, transfer_matrix
from ..utils import cache_dir as default_cache_dir
from ..zoo import load_spec, snapshot_dir, train_job, zoo_jobs
from . import Settings, Study, register_study, setting

__all__ = ["SurrogateStudyResult", "SurrogateSettings", "surrogate_study",
           "QUICK", "FULL", "TINY", "GUBRI_ATTACK"]

log = logging.getLogger("transferability")

#: Gubri et al.'s attack, the study's one default: L∞ BIM, ε = 0.2, 50 steps of ε/10 (the
#: step follows ε unless given; the seed is the first training seed unless given).
GUBRI_ATTACK = AttackSpec("bim", {"eps": 0.2, "steps": 50}, step="eps/10")


@dataclass(frozen=True)
class SurrogateSettings(Settings):
    """The settings of :func:`surrogate_study` (its keywords), checked once; the defaults
    are the full study. ``attack`` is an :class:`~transferability.attacks.AttackSpec`,
    laid over :data:`GUBRI_ATTACK` here (the one place), or a factory ``(model) -> attack``
    used as given."""

    target: str = setting("mnist", Text(), "the task of surrogates and victims")
    seeds: tuple[int, ...] = setting((0, 1, 2), Each(Seed()), "training seeds")
    epochs: int = setting(8, Integer(2), "training epochs of every surrogate")
    train_per_class: int = setting(200, Integer(), "training images per class")
    rhos: tuple[float, ...] = setting((0.05, 0.1, 0.2, 0.4), Each(Positive()),
                                      "SAM radii (0.05 is SAM, larger l-SAM)")
    lgv_epochs: int = setting(2, Integer(), "epochs of LGV's collection")
    lgv_per_epoch: int = setting(4, Integer(), "LGV models collected per epoch")
    attack: AttackSpec | Callable = setting(GUBRI_ATTACK, AttackRule(GUBRI_ATTACK),
                                            "the transfer attack")
    attack_per_class: int = setting(20, Integer(), "attacked test images per class")
    pair_epochs: int = setting(4, Integer(), "epochs of the pair trained against transfer")
    sharpness_samples: int = setting(10, Integer(),
                                     "Hutchinson probes of each Hessian-trace measurement")
    victim_schedule: str = setting("step", OneOf(*SCHEDULES),
                                   "the victims' learning-rate schedule")


#: The full study (its own command), the quick one of ``make demo`` and ``demo --quick``'s
#: (one seed, three epochs, a few images).
FULL = SurrogateSettings()
QUICK = FULL.replace(seeds=(0, 1), epochs=4, train_per_class=80, rhos=(0.05, 0.1),
                     lgv_epochs=1, attack=GUBRI_ATTACK.with_options(steps=20),
                     attack_per_class=8, pair_epochs=2, sharpness_samples=4)
TINY = QUICK.replace(seeds=(0,), epochs=3, train_per_class=60, lgv_per_epoch=2,
                     attack=GUBRI_ATTACK.with_options(steps=5), attack_per_class=4,
                     pair_epochs=1)
#: On the colour task (``--target colour-digits``): its whole training split (800 a class,
#: 1,000 steps in 8 epochs: the models of this study sit at chance for the first ~400 steps,
#: as on SVHN; with 300 a class SAM never leaves chance), radii that
#: SAM trains with (l-SAM at ρ ≥ 0.07 falls back to chance within 8 epochs: it is reported
#: as diverged) and BIM at ε = 8/255, 20 steps, the CIFAR radius (ε = 0.2 moves a colour
#: image by 51 levels). The victims learn it with a cosine schedule: with the surrogates'
#: step schedule the resnet victim stays at chance after the first drop (13% test accuracy,
#: 84% with cosine).
COLOUR = {"train_per_class": 800, "epochs": 8, "pair_epochs": 4, "rhos": (0.02, 0.05, 0.1),
          "attack": GUBRI_ATTACK.with_options(eps=8 / 255, steps=20),
          "victim_schedule": "cosine"}
#: A surrogate whose test accuracy stays below this share of the way from chance to 1 did
#: not train (too large a ρ): it is reported, but left out of the claims and correlations.
DIVERGED = 0.5
VICTIMS = ("lenet", "resnet", "mlp")
#: Sharpness (e): Hutchinson's Hessian trace with 10 probes on the first 256 train images.
SHARPNESS = {"measure": "hessian_trace", "samples": 10, "n": 256}
#: The gradient-alignment pair (f): penalty weights, learning rate.
PAIR_LAMS = (0.0, 5.0)
PAIR_LR = 0.02


@dataclass(frozen=True)
class SurrogateStudyResult(Result):
    """Per-surrogate rows (each with its training ``regime``), per-epoch rows, the summary
    by regime, the sharpness correlation, the pair experiment, and the claims stated
    plainly."""

    rows: list[dict]
    per_epoch: list[dict]
    summary: list[dict]
    sharpness: dict
    pair: list[dict]
    claims: list[Claim]
    settings: dict = field(default_factory=dict)

    # 2: accuracy (was test_acc), accuracy_a/_b (were acc_a/_b); 3: settings'
    # train_per_class (was n_per_class); 4: rows' and summary's regime (was kind)
    schema: ClassVar[int] = 4

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        names = {"test_acc": "accuracy", "acc_a": "accuracy_a", "acc_b": "accuracy_b",
                 "kind": "regime"}
        for part in ("rows", "per_epoch", "summary", "pair"):
            data[part] = [{names.get(k, k): v for k, v in row.items()}
                          for row in data.get(part, [])]
        data["settings"] = {("train_per_class" if k == "n_per_class" else k): v
                            for k, v in (data.get("settings") or {}).items()}
        return data


def _spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"transfer": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "n": len(values)}


def _specs(target, seeds, epochs, train_per_class, rhos,
           victim_schedule="step") -> tuple[dict, dict]:
    data = {"dataset": target, "n_per_class": train_per_class}
    base = {"epochs": epochs, "lr": 0.05, "schedule": "step", "batch_size": 64}
    models = []
    for seed in seeds:
        models.append({"name": f"sgd-s{seed}", "arch": "cnn", "data": data,
                       "train": {**base, "seed": seed, "snapshot_every": 1}})
        for rho in rhos:
            method = "sam" if rho <= 0.05 else "lsam"
            models.append({"name": f"{method}-r{rho}-s{seed}", "arch": "cnn", "data": data,
                           "train": {**base, "seed": seed, "method": method, "rho": rho}})
    # the mlp is built for one size: the task's (read from its images for users' data)
    side = (dataset_info(target).image_size if family_of(target)
            else dataset_from_spec(target, "test").x.shape[-1])
    victims = [{"name": f"victim-{arch}", "arch": arch, "data": data,
                "train": {**base, "seed": 100 + i, "schedule": victim_schedule},
                **({"arch_kwargs": {"image_size": side}} if arch == "mlp" and side != 28 else {})}
               for i, arch in enumerate(VICTIMS)]
    return {"models": models}, {"models": victims}


def _swa(members: list) -> torch.nn.Module:
    """The average of the members' weights (LGV-SWA), for its sharpness."""
    model = copy.deepcopy(members[0])
    state = {k: torch.stack([m.state_dict()[k].float() for m in members]).mean(0).to(v.dtype)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return model


def _attack(config: dict, inputs: dict):
    """The attack of a job: the spec in its config, or a factory given as an input."""
    return inputs["attack"].artifact if "attack" in inputs else AttackSpec.of(config["attack"])


# ---- the jobs --------------------------------------------------------------------------

@job_kind("surrogate_snapshot", artifact="model")
def snapshot_job(config: dict, inputs: dict) -> Output:
    """The weights after ``epoch`` of the zoo ``train`` job whose config is ``train``
    (its ``snapshot_every`` side output; retrained, deterministically, when the file is
    missing or damaged)."""
    path = Snapshot(1, snapshot_dir(config["train"], inputs)).path(config["epoch"])
    if path.is_file():
        try:
            return Output({"epoch": config["epoch"]}, load_checkpoint(path))
        except CheckpointError as exc:
            quarantine(path, str(exc).splitlines()[0])
    log.warning("snapshot %s is missing or damaged: retraining %s", path,
                config["train"]["name"])
    train_job(config["train"], {"snapshot_root": inputs["snapshot_root"]})
    return Output({"epoch": config["epoch"]}, load_checkpoint(path))


@job_kind("surrogate_lgv", artifact="model")
def lgv_job(config: dict, inputs: dict) -> Output:
    """LGV (Gubri et al., ECCV 2022): from the trained ``start``, ``epochs`` more epochs at
    a high constant learning rate collecting ``per_epoch`` weights each; the surrogate is
    their ensemble, attacked through one member per step (shuffled)."""
    start = copy.deepcopy(inputs["start"].artifact)
    train = dataset_from_spec(config["data"], "train")
    history = fit(start, train, method="lgv", per_epoch=config["per_epoch"],
                  epochs=config["epochs"], lr=config["lr"], batch_size=config["batch_size"],
                  seed=config["seed"], desc=f"lgv-s{config['seed']}")
    members = lgv_members(start, history.extras["members"])
    return Output({"members": len(members)},
                  Ensemble(members, sample=1, seed=config["seed"]))


@job_kind("surrogate_accuracy")
def accuracy_job(config: dict, inputs: dict) -> dict:
    """Accuracy and loss of ``model`` on the ``data`` test split."""
    test = dataset_from_spec(config["data"], "test")
    acc, loss = evaluate(inputs["model"].artifact, test)
    return {"accuracy": acc, "loss": loss, "num_classes": test.num_classes}


@job_kind("sharpness")
def sharpness_job(config: dict, inputs: dict) -> dict:
    """Sharpness of ``model``'s train loss (:func:`~transferability.sharpness.sharpness`)
    on the first ``n`` train images; with ``swa`` that of the average of an ensemble's
    members' weights (LGV-SWA, Gubri et al. 2022)."""
    model = inputs["model"].artifact
    if config["swa"]:
        model = _swa(list(model.members))
    train = dataset_from_spec(config["data"], "train")
    n = config["n"]
    return sharpness(model, train.x[:n], train.y[:n], config["measure"],
                     samples=config["samples"], seed=config["seed"]).record()


@job_kind("surrogate_pair")
def pair_job(config: dict, inputs: dict) -> dict:
    """Adam et al. (2019): models ``a`` and ``b`` trained on together with ``lam`` times
    the alignment of their input gradients; transfer between them (both-correct) and their
    test accuracy."""
    torch.manual_seed(config["seed"])
    pair = ModelPair(copy.deepcopy(inputs["a"].artifact).train(),
                     copy.deepcopy(inputs["b"].artifact).train())
    for p in pair.parameters():
        p.requires_grad_(True)
    train = dataset_from_spec(config["data"], "train")
    fit(pair, train, method="gradient_alignment_penalty", lam=config["lam"],
        epochs=config["epochs"], lr=config["lr"], batch_size=config["batch_size"],
        seed=config["seed"], desc=f"pair lam={config['lam']}")
    members = {"a": pair.model_a.eval(), "b": pair.model_b.eval()}
    test = dataset_from_spec(config["test"], "test")
    probe = per_class(test, config["per_class"], seed=config["probe_seed"])
    matrix = transfer_matrix(members, members, probe.x, probe.y, attack=_attack(config, inputs),
                             show_progress=False)
    r = matrix.rates("both_correct")
    return {"lam": config["lam"], "a_to_b": float(r[0, 1]), "b_to_a": float(r[1, 0]),
            "accuracy_a": evaluate(members["a"], test)[0],
            "accuracy_b": evaluate(members["b"], test)[0]}


@job_kind("surrogate_study", device=False)
def surrogate_study_job(config: dict, inputs: dict) -> dict:
    """The study's tables (:class:`SurrogateStudyResult`, as a dict) from its part jobs."""
    settings = config["settings"]
    seeds, epochs = settings["seeds"], settings["epochs"]
    value = {name: out.value for name, out in inputs.items()}

    def rates(model: str) -> dict:
        """Transfer among the samples both models classify correctly (Gubri et al.'s
        protocol), averaged over victims, with its counts and the white-box success."""
        row = TransferMatrix.from_dict(value[f"transfer:{model}"])
        fooled, pairs = row.counts("both_correct")
        victims = row.rates("both_correct")[0]
        return {"transfer": math.nan if np.isnan(victims).all() else float(np.nanmean(victims)),
                "fooled": int(fooled.sum()), "pairs": int(pairs.sum()),
                "white_box": float(row.white_box_rates("both_correct")[0]),
                "weak": bool(row.weak_surrogates())}

    per_epoch = []
    for seed in seeds:
        history = value[f"train:sgd-s{seed}"]["history"]
        for epoch in range(1, epochs + 1):
            per_epoch.append({"seed": seed, "epoch": epoch, "lr": history[epoch - 1]["lr"],
                              "accuracy": history[epoch - 1]["accuracy"],
                              **rates(f"sgd-s{seed}@{epoch}")})

    def learnt(model: str) -> bool:
        """Whether ``model``'s test accuracy is past :data:`DIVERGED` of the way from chance."""
        accuracy = value[f"accuracy:{model}"]
        chance = 1 / accuracy["num_classes"]
        return accuracy["accuracy"] >= config["diverged"] * (1 - chance) + chance

    rows = []
    for seed in seeds:
        best = _early_stop([r for r in per_epoch if r["seed"] == seed],
                           lambda epoch, seed=seed: learnt(f"sgd-s{seed}@{epoch}"))
        rows.append({"regime": "early stopped", "seed": seed, "rho": None,
                     "epoch": best["epoch"], "model": f"sgd-s{seed}@{best['epoch']}"})
        rows.append({"regime": "fully trained", "seed": seed, "rho": None, "epoch": epochs,
                     "model": f"sgd-s{seed}@{epochs}"})
        for rho in settings["rhos"]:
            method = "sam" if rho <= 0.05 else "lsam"
            rows.append({"regime": f"{'SAM' if method == 'sam' else 'l-SAM'} rho={rho}",
                         "seed": seed, "rho": rho, "epoch": epochs,
                         "model": f"{method}-r{rho}-s{seed}"})
        rows.append({"regime": f"LGV ({value[f'lgv:{seed}']['members']} models)", "seed": seed,
                     "rho": None, "epoch": epochs + settings["lgv_epochs"],
                     "model": f"lgv-s{seed}"})
    for row in rows:
        row.update(rates(row["model"]))
        row["accuracy"] = value[f"accuracy:{row['model']}"]["accuracy"]
        row["diverged"] = not learnt(row["model"])
    for row in rows:
        row["sharpness"] = value[f"sharpness:{row['model']}"]["value"]
    trained = [r for r in rows if not r["diverged"]]
    xs, ys = [r["sharpness"] for r in trained], [r["transfer"] for r in trained]
    sharp = {}
    if len(trained) >= 3:
        low, high = bootstrap_ci(spearman, xs, ys, seed=0)
        sharp = {"spearman": spearman(xs, ys), "low": low, "high": high, "n": len(trained)}
    pair_rows = [value[f"pair:{lam}"] for lam in config["lams"]]
    summary = _summary(rows)
    return SurrogateStudyResult(rows, per_epoch, summary, sharp, pair_rows,
                                _claims(rows, pair_rows, sharp), settings).to_dict()


def _early_stop(epochs: list[dict], trained: Callable[[int], bool]) -> dict:
    """Early stopping (b): the epoch row that transfers best among the epochs whose snapshot
    ``trained`` (all of them if none did). A snapshot still at chance fools a handful of
    pairs at random; chosen, it would be reported as diverged and leave the claims."""
    return max([r for r in epochs if trained(r["epoch"])] or epochs, key=lambda r: r["transfer"])


def _surrogate_jobs(settings: dict, attack, cache_dir: Path) -> Job:
    """The study's graph (see the module docstring): its final ``surrogate_study`` job."""
    target, seeds, epochs = settings["target"], settings["seeds"], settings["epochs"]
    data = {"dataset": target, "n_per_class": settings["train_per_class"]}
    surrogate_spec, victim_spec = _specs(target, seeds, epochs, settings["train_per_class"],
                                         settings["rhos"], settings["victim_schedule"])
    trains = zoo_jobs(load_spec(surrogate_spec), cache_dir)
    victims = zoo_jobs(load_spec(victim_spec), cache_dir)
    attack_in = {}
    if not isinstance(attack, AttackSpec):  # a factory has no content key: a key of this call
        attack_in = {"attack": Given(f"attack-{uuid.uuid4().hex}", attack, repr(attack))}
    spec = attack.to_dict() if isinstance(attack, AttackSpec) else None
    attack_config = {"attack": spec, "test": target,
                     "per_class": settings["attack_per_class"], "probe_seed": 0}
    row_config = {"surrogate": "surrogate", "data": target,
                  "per_class": settings["attack_per_class"], "seed": 0, "attack": spec}
    victim_in = {f"victim:{name}": job for name, job in victims.items()}

    models: dict[str, tuple[Job, int]] = {}  # every surrogate by its row's name, its seed
    inputs: dict[str, Job] = {}
    for seed in seeds:
        name = f"sgd-s{seed}"
        inputs[f"train:{name}"] = trains[name]
        for epoch in range(1, epochs + 1):
            models[f"{name}@{epoch}"] = Job(
                "surrogate_snapshot", {"train": trains[name].config, "epoch": epoch},
                {"model": trains[name],
                 "snapshot_root": trains[name].inputs["snapshot_root"]},
                label=f"{name}@{epoch}"), seed
        for rho in settings["rhos"]:
            method = "sam" if rho <= 0.05 else "lsam"
            models[f"{method}-r{rho}-s{seed}"] = trains[f"{method}-r{rho}-s{seed}"], seed
        lgv = Job("surrogate_lgv", {"data": data, "seed": seed, "epochs": settings["lgv_epochs"],
                                    "per_epoch": settings["lgv_per_epoch"], "lr": 0.05,
                                    "batch_size": 64},
                  {"start": trains[name]}, label=f"lgv-s{seed}")
        models[f"lgv-s{seed}"] = lgv, seed
        inputs[f"lgv:{seed}"] = lgv
    for name, (model, seed) in models.items():
        inputs[f"transfer:{name}"] = Job("transfer_row", row_config,
                                         {"surrogate": model, **victim_in, **attack_in},
                                         label=name)
        inputs[f"accuracy:{name}"] = Job("surrogate_accuracy", {"data": target},
                                         {"model": model}, label=name)
        inputs[f"sharpness:{name}"] = Job(
            "sharpness", {**SHARPNESS, "samples": settings.get("sharpness_samples",
                                                               SHARPNESS["samples"]),
                          "data": data, "seed": seed,
                          "swa": name.startswith("lgv")}, {"model": model}, label=name)
    for lam in PAIR_LAMS:
        inputs[f"pair:{lam}"] = Job(
            "surrogate_pair", {**attack_config, "data": data, "lam": lam,
                               "epochs": settings["pair_epochs"], "lr": PAIR_LR,
                               "batch_size": 64, "seed": seeds[0]},
            {"a": victims["victim-mlp"], "b": victims["victim-lenet"], **attack_in},
            label=f"pair lam={lam}")
    return Job("surrogate_study", {"settings": settings, "diverged": DIVERGED,
                                   "lams": list(PAIR_LAMS)}, inputs, label="surrogates")


def surrogate_study(settings: SurrogateSettings = FULL, *, store: ResultStore | None = None,
                    cache_dir=None, backend: str = "local", device=None,
                    show_progress: bool | None = None,
                    **backend_options) -> SurrogateStudyResult:
    """Run the study (see the module docstring) with ``settings`` (:data:`FULL`,
    :data:`QUICK`, or a variant: ``QUICK.replace(target="digits")``) and return its tables.

    The attack is laid over :data:`GUBRI_ATTACK` (L∞ BIM, ε = 0.2, 50 steps of ε/10, the
    step rule on the spec); a
    factory is used as given (it has no content key, so the jobs that attack are recomputed
    on every call). Jobs run on ``backend`` (with ``backend_options``) and ``device``, and
    are kept in ``store``, by default the one in ``cache_dir``.
    """
    if not isinstance(settings, SurrogateSettings):
        raise ValueError(f"settings: expected SurrogateSettings, got {type(settings).__name__}")
    s = settings
    # the target is read before any job: too few images per class is refused here
    check_per_class(s.train_per_class, "train_per_class", dataset_from_spec(s.target, "train"))
    check_per_class(s.attack_per_class, "attack_per_class", dataset_from_spec(s.target, "test"))
    attack = s.attack  # a spec is seeded by the first seed unless it gives one
    if isinstance(attack, AttackSpec):
        attack = attack.with_defaults({"seed": s.seeds[0]})
    settings = {**s.to_dict(), "attack": attack.to_dict() if isinstance(attack, AttackSpec)
                else repr(attack)}
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = _surrogate_jobs(settings, attack, cache_dir)
    log.info("  surrogates: %d cnn models; victims: %s", len(s.seeds) * (1 + len(s.rhos)),
             ", ".join(VICTIMS))
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="surrogates", backend=backend, device=device,
                       show_progress=show_progress, **backend_options)
    return SurrogateStudyResult.from_dict(run.value(final))


def _summary(rows: list[dict]) -> list[dict]:
    regimes = list(dict.fromkeys(r["regime"] for r in rows))
    out = []
    for regime in regimes:
        group = [r for r in rows if r["regime"] == regime]
        out.append({"regime": regime, **_spread([r["transfer"] for r in group]),
                    "accuracy": float(np.mean([r["accuracy"] for r in group])),
                    "sharpness": float(np.mean([r["sharpness"] for r in group])),
                    "diverged": sum(r["diverged"] for r in group)})
    return out


def _claims(rows: list[dict], pair: list[dict], sharp: dict) -> list[Claim]:
    """Gubri's and Adam's claims as "a paired difference over seeds is > 0", decided from its
    t interval (:func:`~transferability.stats.claim`); the sharpness claim from the bootstrap
    interval of the Spearman correlation. Surrogates that did not train are left out."""
    trained = [r for r in rows if not r["diverged"] and not math.isnan(r["transfer"])]
    seeds = list(dict.fromkeys(r["seed"] for r in rows))

    def transfer(regime: str) -> dict:
        return {r["seed"]: r["transfer"] for r in trained if r["regime"] == regime}

    def better(statement: str, a: str, b: str) -> Claim:
        ta, tb = transfer(a), transfer(b)
        return claim(statement, [ta[s] - tb[s] for s in seeds if s in ta and s in tb])

    means = {k: np.mean(list(transfer(k).values()))
             for k in dict.fromkeys(r["regime"] for r in trained)}
    lsam = max((k for k in means if k.startswith("l-SAM")), key=means.get, default=None)
    lgv = next(r["regime"] for r in rows if r["regime"].startswith("LGV"))
    claims = []
    if lsam is not None:
        claims.append(better(f"Gubri's ordering, l-SAM > early stopping: the best l-SAM "
                             f"({lsam}) transfers better than early stopping",
                             lsam, "early stopped"))
    claims += [
        better("Gubri's ordering, early stopping > full training: early stopping transfers "
               "better", "early stopped", "fully trained"),
        better("LGV transfers better than the model it starts from", lgv, "fully trained")]
    plain, penalised = pair
    drop = (plain["a_to_b"] + plain["b_to_a"] - penalised["a_to_b"] - penalised["b_to_a"]) / 2
    claims.append(claim("(f) Adam's effect: the alignment penalty lowers transfer between the "
                        f"pair (one pair; clean accuracy {penalised['accuracy_a']:.3f} / "
                        f"{penalised['accuracy_b']:.3f} with it, {plain['accuracy_a']:.3f} / "
                        f"{plain['accuracy_b']:.3f} without)",
                        [] if math.isnan(drop) else [drop]))
    if sharp and not math.isnan(sharp["spearman"]):
        claims.append(Claim.from_interval(
            "(e) flatter surrogates transfer better: −Spearman(sharpness, transfer) > 0",
            -sharp["spearman"], -sharp["high"], -sharp["low"], sharp["n"], "bootstrap"))
    return claims



STUDY = register_study(Study(
    "surrogates", "Surrogates: how training controls transfer", SurrogateStudyResult,
    "surrogate_study", surrogate_study, FULL, QUICK, TINY,
    help="How training controls transfer (Gubri et al.; Adam et al.): transfer per epoch "
         "(early stopping), SAM/l-SAM across rho, LGV, sharpness vs transfer, and a pair "
         "trained against transfer; the attack's step is eps/10 unless --step-size is "
         "given. Several minutes on a CPU; --quick: one.",
    by_family={"colour": COLOUR}))
