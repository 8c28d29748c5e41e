"""The robust-transfer study: keeping a source's adversarial robustness on a new task.

Shafahi et al. (ICLR 2020) transfer a robust (PGD-trained) source by freezing its features
and find robustness inherited; fine-tuning more layers trades it for clean accuracy, and
LwF's feature-distance penalty recovers clean accuracy while keeping most of it. Chen et al.
(CARTL, ICML 2021) pre-train with feature-distance minimisation (FDM) and fine-tune the last
blocks non-expansively (NEFT) with BatchNorm frozen. This study measures it on bundled data:
sources are ``resnet`` models (BatchNorm, so BN freezing means something) trained on a
source task by three training methods (the ``source_method``: ``standard``, ``pgd_at`` and
``cartl_fdm``), with several seeds; each is transferred to the target by every fine-tuning
``recipe`` (:data:`RECIPES`), and clean and robust accuracy
(:func:`~transferability.attacks.robust_accuracy`: AutoAttack by default; the quick
version keeps the fast worst case of PGD with CE and with margin loss) are measured on the
target's test images. The report names the attack used.

The study is a graph of jobs (:mod:`transferability.jobs`) kept in a results store: a zoo
``train`` job per source, a ``fine_tune`` job per (source, recipe), a ``robust_accuracy``
job per (fine-tuned model, ε), and a final ``robust_transfer_study`` job that assembles the
tables. A rerun computes nothing; an interrupted one resumes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np

from .._results import Result
from .._validation import Each, Integer, OneOf, Positive, Seed, Text
from ..attacks import AttackRule, AttackSpec, robust_accuracy
from ..attacks.robust import ROBUST_ATTACKS
from ..data import check_per_class, dataset_from_spec, family_of, per_class
from ..jobs import Job, Output, ResultStore, job_kind, open_store, run_jobs
from ..report import format_radius
from ..stats import Claim, claim
from ..transfer import fine_tune
from ..utils import cache_dir as default_cache_dir
from ..zoo import load_spec, zoo_jobs
from . import Settings, Study, register_study, setting

__all__ = ["RobustTransferResult", "RobustTransferSettings", "robust_transfer_study",
           "FULL", "QUICK", "TINY", "RECIPES", "SOURCE_METHODS",
           "SOURCE_ATTACK"]

log = logging.getLogger("transferability")

SOURCE = {"mixture": ["fonts", "animals"], "k": 5}
#: The source of a colour target (``colour-*``): colour digits and animals, generated with
#: another seed than the target's images.
SOURCE_BY_FAMILY = {"colour": {"mixture": ["colour-digits", "colour-animals"], "k": 5,
                               "seed": 1}}
#: Fine-tuning recipes: name -> fine_tune options (``method`` among them: fine_tune's
#: training method). "last k" trains the last k backbone blocks and a new head; the resnet
#: has 5 blocks (stem, 3 residual blocks, pooling).
RECIPES = MappingProxyType({
    "linear probe": {"freeze": "all"},
    "last 2 blocks": {"freeze": 2},
    "last 3 blocks": {"freeze": 3},
    "full fine-tune": {"freeze": None},
    "LwF": {"freeze": None, "method": "lwf", "lr": 0.01},  # diverges at 0.05
    "NEFT (last 3)": {"freeze": 3, "neft_beta": 0.5},
    "BN frozen (last 3)": {"freeze": 3, "freeze_bn": True, "reuse_bn_stats": True},
    "NEFT + BN frozen (last 3)": {"freeze": 3, "neft_beta": 0.5, "freeze_bn": True,
                                  "reuse_bn_stats": True},
})
#: The PGD of the ``pgd_at`` and ``cartl_fdm`` sources (their training's own steps: 7): the
#: default under :attr:`RobustTransferSettings.source_attack`.
SOURCE_ATTACK = AttackSpec("pgd", {"eps": 0.2})
#: The sources' training methods: name -> the zoo's ``train`` options (the adversarial ones
#: also take the options of :attr:`RobustTransferSettings.source_attack`).
SOURCE_METHODS = MappingProxyType({"standard": {}, "pgd_at": {"method": "pgd_at"},
                                   "cartl_fdm": {"method": "cartl_fdm", "k": 3}})


def _renamed_settings(settings: Mapping) -> dict:
    """Settings stored before the rename of ``methods`` to ``recipes``."""
    settings = dict(settings)
    if "methods" in settings:
        settings["recipes"] = settings.pop("methods")
    return settings


@dataclass(frozen=True)
class RobustTransferSettings(Settings):
    """The settings of :func:`robust_transfer_study` (its keywords), checked once; the
    defaults are the full study. ``source_attack`` is the PGD of the adversarially trained
    sources, an :class:`~transferability.attacks.AttackSpec` (or its ``to_dict()``) laid over
    :data:`SOURCE_ATTACK` here; ``recipes`` name :data:`RECIPES`."""

    seeds: tuple[int, ...] = setting((0, 1, 2), Each(Seed()), "training seeds")
    source_epochs: int = setting(5, Integer(), "training epochs of every source")
    source_per_class: int = setting(300, Integer(), "source training images per class")
    target: str = setting("mnist", Text(), "the target task")
    target_per_class: int = setting(100, Integer(), "target training images per class")
    tune_epochs: int = setting(10, Integer(), "fine-tuning epochs")
    eval_per_class: int = setting(10, Integer(), "target test images per class for robust "
                                                 "accuracy")
    radii: tuple[float, ...] = setting((0.1, 0.2), Each(Positive()),
                                       "robust-accuracy radii ε (0.1 or 8/255)")
    source_attack: AttackSpec = setting(SOURCE_ATTACK, AttackRule(SOURCE_ATTACK,
                                                                  factories=False),
                                        "the PGD of the adversarially trained sources",
                                        option=False)
    recipes: tuple[str, ...] = setting(tuple(RECIPES), Each(OneOf(*RECIPES)),
                                       "fine-tuning recipes")
    robust_attack: str = setting("autoattack", OneOf(*ROBUST_ATTACKS),
                                 "robust accuracy by AutoAttack, or pgd: the fast worst case "
                                 "of PGD-20 with CE and margin loss")

    def check(self) -> None:
        spec = self.source_attack
        if spec.name != SOURCE_ATTACK.name or spec.seed is not None:
            raise ValueError(f"source_attack: the sources' adversarial training crafts PGD "
                             f"seeded by its training seed; got {spec.name!r}, seed {spec.seed}")


FULL = RobustTransferSettings()
QUICK = FULL.replace(seeds=(0,), source_epochs=3, source_per_class=80, target_per_class=50,
                     tune_epochs=6, eval_per_class=4, radii=(0.1,),
                     recipes=("linear probe", "last 3 blocks", "full fine-tune", "LwF"),
                     robust_attack="pgd")
#: ``demo --quick``'s.
TINY = QUICK.replace(source_epochs=1, source_per_class=40, target_per_class=20, tune_epochs=1,
                     eval_per_class=3, recipes=("linear probe", "NEFT + BN frozen (last 3)"))
#: On the colour task: the sources' whole training split for 8 epochs (1,000 steps: the
#: resnet sits at chance for its first ~400 steps, as on SVHN; a standard source then reaches
#: 70% on the colour mixture, against chance with 150 a class and 4 epochs), more target
#: images, and radii for 8-bit colour images: PGD-AT at ε = 0.2 learns nothing there.
COLOUR = {"source_per_class": 800, "source_epochs": 8, "target_per_class": 100,
          "tune_epochs": 4, "radii": (4 / 255,),
          "source_attack": SOURCE_ATTACK.with_options(eps=4 / 255)}
#: Fine-tuning learning rate (SGD, momentum 0.9, cosine): a new head from scratch needs it.
TUNE_LR = 0.05


@dataclass(frozen=True)
class RobustTransferResult(Result):
    """One row per (source method, recipe, seed), the summary over seeds, the CARTL ablation
    and the claims stated plainly."""

    rows: list[dict]
    summary: list[dict]
    ablation: list[dict]
    claims: list[Claim]
    settings: dict = field(default_factory=dict)

    schema: ClassVar[int] = 3  # 2: accuracy, accuracy_std, robust_accuracy@E,
    # robust_accuracy_std@E (were clean_acc, clean_std, robust_acc@E, robust_std@E);
    # 3: source_method, recipe (were source, method; settings: recipes, source_attack)

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        def name(key: str) -> str:
            key = {"clean_acc": "accuracy", "clean_std": "accuracy_std",
                   "source": "source_method", "method": "recipe"}.get(key, key)
            key = re.sub(r"^robust_acc@", "robust_accuracy@", key)
            return re.sub(r"^robust_std@", "robust_accuracy_std@", key)
        for part in ("rows", "summary", "ablation"):
            data[part] = [{name(k): v for k, v in row.items()} for row in data.get(part, [])]
        data["settings"] = _renamed_settings(data.get("settings") or {})
        return data




def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


@job_kind("fine_tune", artifact="model")
def fine_tune_job(config: dict, inputs: dict) -> Output:
    """One fine-tuning run of ``source`` on the ``target`` task
    (:func:`~transferability.transfer.fine_tune` with ``options``): the tuned model and its
    clean test accuracy."""
    target = config["target"]
    train = dataset_from_spec({"dataset": target, "n_per_class": config["target_per_class"]},
                              "train")
    test = dataset_from_spec(target, "test")
    tuned = fine_tune(inputs["source"].artifact, train, test, epochs=config["epochs"],
                      seed=config["seed"], **config["options"])
    return Output({"accuracy": tuned.accuracy, "loss": tuned.loss, "config": tuned.config},
                  tuned.model)


@job_kind("robust_accuracy")
def robust_accuracy_job(config: dict, inputs: dict) -> dict:
    """Robust accuracy of ``model`` at radius ``eps`` on ``per_class`` test images a class
    under ``attack`` (:func:`~transferability.attacks.robust_accuracy`): ``"autoattack"``,
    or (the default) the worst case of PGD-``steps`` with CE and with margin loss."""
    probe = per_class(dataset_from_spec(config["target"], "test"), config["per_class"],
                      seed=config["probe_seed"])
    return robust_accuracy(inputs["model"].artifact, probe.x, probe.y, config["eps"],
                           attack=config.get("attack", "pgd"), steps=config["steps"],
                           seed=config["seed"]).record()


@job_kind("robust_transfer_study", device=False)
def robust_transfer_study_job(config: dict, inputs: dict) -> dict:
    """The study's tables (:class:`RobustTransferResult`, as a dict) from its part jobs."""
    settings = config["settings"]
    eps = tuple(settings["radii"])
    rows = []
    for seed in settings["seeds"]:
        for source_method in config["source_methods"]:
            for recipe in settings["recipes"]:
                run = f"{source_method}-s{seed}/{recipe}"
                row = {"source_method": source_method, "recipe": recipe, "seed": seed,
                       "accuracy": inputs[f"tune:{run}"].value["accuracy"]}
                for e in eps:
                    row[f"robust_accuracy@{e}"] = \
                        inputs[f"robust:{run}@{e}"].value["robust_accuracy"]
                rows.append(row)
    summary = _summary(rows, eps)
    ablation = [s for s in summary if s["source_method"] in ("pgd_at", "cartl_fdm")
                and s["recipe"] in ("last 3 blocks", "NEFT (last 3)", "BN frozen (last 3)",
                                    "NEFT + BN frozen (last 3)")]
    return RobustTransferResult(rows, summary, ablation, _claims(rows, eps[0]),
                                settings).to_dict()


def _robust_jobs(settings: dict, cache_dir: Path) -> Job:
    """The study's graph (see the module docstring): its final ``robust_transfer_study`` job."""
    data = {**settings.get("source", SOURCE), "n_per_class": settings["source_per_class"]}
    source_attack = settings["source_attack"]["options"]  # the adversarial methods' own
    spec = {"models": [
        {"name": f"{source_method}-s{seed}", "arch": "resnet", "data": data,
         "train": {"epochs": settings["source_epochs"], "lr": 0.05, "batch_size": 64,
                   "seed": seed, **options, **(source_attack if options else {})}}
        for seed in settings["seeds"] for source_method, options in SOURCE_METHODS.items()]}
    sources = zoo_jobs(load_spec(spec), cache_dir)
    target = settings["target"]
    # the PGD jobs keep their original configuration (and so their stored results)
    attack = ({"steps": 20} if settings["robust_attack"] == "pgd"
              else {"steps": 100, "attack": settings["robust_attack"]})
    inputs = {}
    for seed in settings["seeds"]:
        for source_method in SOURCE_METHODS:
            for recipe in settings["recipes"]:
                run = f"{source_method}-s{seed}/{recipe}"
                tuned = Job("fine_tune", {"target": target,
                                          "target_per_class": settings["target_per_class"],
                                          "epochs": settings["tune_epochs"], "seed": seed,
                                          "options": {"lr": TUNE_LR, **RECIPES[recipe]}},
                            {"source": sources[f"{source_method}-s{seed}"]}, label=run)
                inputs[f"tune:{run}"] = tuned
                for e in settings["radii"]:
                    inputs[f"robust:{run}@{e}"] = Job(
                        "robust_accuracy", {"target": target, "eps": e, **attack,
                                            "seed": seed, "probe_seed": 0,
                                            "per_class": settings["eval_per_class"]},
                        {"model": tuned}, label=f"{run}@{e}")
    return Job("robust_transfer_study",
               {"settings": settings, "source_methods": list(SOURCE_METHODS)}, inputs,
               label="robust-transfer")


def robust_transfer_study(settings: RobustTransferSettings = FULL, *,
                          store: ResultStore | None = None, cache_dir=None,
                          backend: str = "local", device=None,
                          show_progress: bool | None = None,
                          **backend_options) -> RobustTransferResult:
    """Run the study (see the module docstring) with ``settings`` (:data:`FULL`,
    :data:`QUICK`, or a variant) and return its tables.

    ``radii`` are the ε of the robust accuracy on the target; ``source_attack`` the PGD of
    the ``pgd_at`` and ``cartl_fdm`` sources over :data:`SOURCE_ATTACK` (ε = 0.2, 7 steps);
    ``recipes`` the fine-tuning recipes (:data:`RECIPES`) every source is transferred by;
    ``robust_attack`` the attack of the robust accuracy. Jobs run on ``backend`` (with
    ``backend_options``) and ``device``, and are kept in ``store``, by default the one in
    ``cache_dir``.
    """
    if not isinstance(settings, RobustTransferSettings):
        raise ValueError(f"settings: expected RobustTransferSettings, got "
                         f"{type(settings).__name__}")
    s = settings
    # the target is read before any job: too few images per class is refused here
    check_per_class(s.target_per_class, "target_per_class", dataset_from_spec(s.target, "train"))
    check_per_class(s.eval_per_class, "eval_per_class", dataset_from_spec(s.target, "test"))
    source = SOURCE_BY_FAMILY.get(family_of(s.target), SOURCE)
    settings = {"seeds": list(s.seeds), "source": source, "source_epochs": s.source_epochs,
                "source_per_class": s.source_per_class, "target": s.target,
                "target_per_class": s.target_per_class, "tune_epochs": s.tune_epochs,
                "eval_per_class": s.eval_per_class, "radii": list(s.radii),
                "source_attack": s.source_attack.to_dict(),
                "recipes": list(s.recipes), "robust_attack": s.robust_attack,
                "robust_accuracy": ("AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square)"
                                    if s.robust_attack == "autoattack"
                                    else "worst of PGD-20 CE and margin")}
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = _robust_jobs(settings, cache_dir)
    log.info("  sources: %d resnet models (standard, pgd_at, cartl_fdm) on %s",
             len(s.seeds) * len(SOURCE_METHODS), "/".join(source["mixture"]))
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="robust-transfer", backend=backend,
                       device=device, show_progress=show_progress, **backend_options)
    return RobustTransferResult.from_dict(run.value(final))


def _summary(rows: list[dict], eps: tuple[float, ...]) -> list[dict]:
    out = []
    for source_method in dict.fromkeys(r["source_method"] for r in rows):
        for recipe in dict.fromkeys(r["recipe"] for r in rows):
            group = [r for r in rows
                     if r["source_method"] == source_method and r["recipe"] == recipe]
            if not group:
                continue
            clean, clean_std = _mean_std([r["accuracy"] for r in group])
            row = {"source_method": source_method, "recipe": recipe, "accuracy": clean,
                   "accuracy_std": clean_std}
            for e in eps:
                mean, std = _mean_std([r[f"robust_accuracy@{e}"] for r in group])
                row[f"robust_accuracy@{e}"], row[f"robust_accuracy_std@{e}"] = mean, std
            row["n"] = len(group)
            out.append(row)
    return out


def _claims(rows: list[dict], eps: float) -> list[Claim]:
    """Each claim of Shafahi et al. and Chen et al. as "a paired difference over seeds is
    > 0", decided from its t interval (:func:`~transferability.stats.claim`)."""
    by = {(r["source_method"], r["recipe"], r["seed"]): r for r in rows}
    seeds = list(dict.fromkeys(r["seed"] for r in rows))
    key = f"robust_accuracy@{eps}"

    def paired(statement, better, worse, column=key):
        """The claim "``better`` > ``worse``" on ``column``, or None when a side is absent."""
        pairs = [(by[(*better, s)][column], by[(*worse, s)][column]) for s in seeds
                 if (*better, s) in by and (*worse, s) in by]
        return claim(statement, [b - w for b, w in pairs]) if pairs else None

    robust = f"robust accuracy at ε={format_radius(eps)}"
    claims = [
        paired(f"(a) a robust source with frozen features keeps more {robust} than a standard "
               "one", ("pgd_at", "linear probe"), ("standard", "linear probe")),
        paired(f"(b) fine-tuning everything costs the pgd_at source {robust}",
               ("pgd_at", "linear probe"), ("pgd_at", "full fine-tune")),
        paired("(b) ... and gains it clean accuracy", ("pgd_at", "full fine-tune"),
               ("pgd_at", "linear probe"), "accuracy"),
        paired("(c) LwF reaches a higher clean accuracy than the linear probe (pgd_at source)",
               ("pgd_at", "LwF"), ("pgd_at", "linear probe"), "accuracy"),
        paired(f"(c) ... and keeps more {robust} than the full fine-tune", ("pgd_at", "LwF"),
               ("pgd_at", "full fine-tune"))]
    base = ("pgd_at", "last 3 blocks")
    for name, part in (("FDM", ("cartl_fdm", "last 3 blocks")),
                       ("NEFT", ("pgd_at", "NEFT (last 3)")),
                       ("BN freezing", ("pgd_at", "BN frozen (last 3)")),
                       ("CARTL's full recipe", ("cartl_fdm", "NEFT + BN frozen (last 3)"))):
        claims.append(paired(f"(d) {name} raises {robust} over PGD-AT + last 3 blocks", part,
                             base))
    return [c for c in claims if c is not None]



STUDY = register_study(Study(
    "robust-transfer", "Robust transfer: keeping a source's robustness", RobustTransferResult,
    "robust_transfer_study", robust_transfer_study, FULL, QUICK, TINY,
    help="Keep a robust source's robustness on a new task (Shafahi et al.; CARTL): standard, "
         "pgd_at and cartl_fdm resnet sources fine-tuned by linear probe, freeze levels, full "
         "fine-tuning, LwF, NEFT and BN freezing; clean and robust accuracy. About 10 minutes "
         "on a CPU; --quick: one.",
    by_family={"colour": COLOUR}))
