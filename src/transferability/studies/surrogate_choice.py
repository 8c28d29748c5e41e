"""Which score to trust for picking surrogates: every model of a zoo in turn is the victim
and the others are candidates (:mod:`transferability.pick_surrogate`).

For each victim, every candidate is scored from one forward pass (the estimators with the
victim's predicted labels as the target, the affine fit of the victim's logits, top-1
agreement) and, beside them, by the target-blind baselines (its accuracy, its parameter
count); the ground truth is the measured transfer of an attack crafted on each candidate to
the victim (the both-correct denominator, 8-bit images). Each score's weighted Kendall τ
against it, top-1 hit and regret per victim; their mean over victims with a bootstrap
interval; and the claim that the best score beats the best baseline. The reverse question
too: for a fixed surrogate, does the same score rank the victims by their exposure?
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .._results import Result
from .._validation import Integer, Seed, Text
from ..attacks import AttackRule, AttackSpec, norms
from ..data import dataset_from_spec, per_class
from ..jobs import Job, ResultStore, job_kind, open_store, run_jobs
from ..pick_surrogate import model_family, score_candidates, validate_scores, victim_outputs
from ..stats import Claim, bootstrap_ci, claim, weighted_tau
from ..transfer_matrix import transfer_matrix
from ..zoo import load_spec, zoo_jobs
from . import Settings, Study, register_study, setting

__all__ = ["SurrogateChoiceSettings", "SurrogateChoiceResult", "run_surrogate_choice"]

#: Scores that never look at the victim.
BLIND = ("accuracy", "params", "same_family")


@dataclass(frozen=True)
class SurrogateChoiceSettings(Settings):
    """The zoo (every model a victim in turn), its images and the validating attack."""

    zoo: str = setting("audit_zoo", Text(), "the zoo: a bundled spec name, or a YAML file")
    data: str = setting("mixture:fonts,animals:5", Text(),
                        "the images: a dataset name, or mixture:A,B:K", option=False)
    per_class: int = setting(10, Integer(2, 1000), "test images per class")
    attack: AttackSpec = setting(AttackSpec("mifgsm", {"eps": 0.2, "steps": 10}),
                                 AttackRule(factories=False), "the attack crafted on each "
                                 "candidate (its transfer is the ground truth)")
    seed: int = setting(0, Seed(), "seed of the images and the attack")


FULL = SurrogateChoiceSettings()
QUICK = FULL.replace(per_class=5, attack=AttackSpec("mifgsm", {"eps": 0.2, "steps": 5}))


@dataclass(frozen=True)
class SurrogateChoiceResult(Result):
    """``rows``: per (victim, score) τ, top-1 hit, regret; ``summary``: per score, mean τ
    over victims with its interval (``blind``: a target-blind baseline); ``reverse``: per
    score, mean τ over surrogates of ranking the victims by exposure; ``claims``."""

    rows: list[dict]
    summary: list[dict]
    reverse: list[dict]
    rates: dict
    claims: list[Claim]
    settings: dict = field(default_factory=dict)


def _data(spec: str) -> dict | str:
    if spec.startswith("mixture:"):
        _, names, k = spec.split(":")
        return {"mixture": names.split(","), "k": int(k)}
    return spec


def _mean_ci(values: list[float], seed: int) -> dict:
    v = np.array([x for x in values if x is not None and math.isfinite(x)])
    if len(v) < 2:
        return {"mean": float(v.mean()) if len(v) else math.nan, "low": math.nan,
                "high": math.nan, "n": len(v)}
    low, high = bootstrap_ci(lambda a, b: float(np.mean(a)), v, v, seed=seed)
    return {"mean": float(v.mean()), "low": low, "high": high, "n": len(v)}


def _summary(by: dict[str, dict[str, float]], seed: int) -> list[dict]:
    """Per score: the mean of its τ over the groups (victims or surrogates), best first."""
    scores = sorted({s for row in by.values() for s in row})
    out = [{"score": s, "blind": s in BLIND,
            **_mean_ci([by[g].get(s, math.nan) for g in by], seed)} for s in scores]
    return sorted(out, key=lambda r: -r["mean"] if math.isfinite(r["mean"]) else math.inf)


@job_kind("surrogate_choice")
def surrogate_choice_job(config: dict, inputs: dict) -> dict:
    """Every model a victim in turn: the scores, the measured transfer, their agreement."""
    names = sorted(k.removeprefix("model:") for k in inputs if k.startswith("model:"))
    models = {n: inputs[f"model:{n}"].artifact for n in names}
    data = per_class(dataset_from_spec(_data(config["data"]), "test", seed=config["seed"]),
                     config["per_class"], seed=config["seed"])
    x = torch.round(data.x * norms.LEVELS) / norms.LEVELS  # 8-bit images
    data = type(data)(x, data.y, name=data.name, class_names=data.class_names)
    matrix = transfer_matrix(models, models, x, data.y, attack=AttackSpec.of(config["attack"]),
                             quantize=True, show_progress=False)
    rates = matrix.rates("both_correct")  # surrogate × victim
    seed, rows, by_victim, exposure = config["seed"], [], {}, {}
    for j, victim in enumerate(names):
        others = {n: models[n] for n in names if n != victim}
        scored = score_candidates(others, data, victim_outputs(models[victim], data),
                                  victim_family=model_family(models[victim]))
        truth = {n: float(rates[i, j]) for i, n in enumerate(names) if n != victim}
        checked = validate_scores(scored, truth, n_boot=200, seed=seed)
        by_victim[victim] = {s: v["tau_w"] for s, v in checked.items()}
        rows += [{"victim": victim, "score": s, "weighted_tau": v["tau_w"],
                  "top1": v["top1_hit"], "regret": v["regret"]} for s, v in checked.items()]
        for s, row in scored.scores.items():
            for c, value in row.items():
                exposure.setdefault(c, {}).setdefault(s, {})[victim] = (value, truth[c])
    by_surrogate = {}
    for c, per_score in exposure.items():  # the reverse question: rank victims per surrogate
        by_surrogate[c] = {}
        for s, pairs in per_score.items():
            xs, ys = zip(*[(v, t) for v, t in pairs.values() if math.isfinite(t)], strict=True)
            by_surrogate[c][s] = weighted_tau(np.array(xs), np.array(ys)) if len(xs) >= 3 \
                else math.nan
    summary, reverse = _summary(by_victim, seed), _summary(by_surrogate, seed)
    claims = _claims(summary, by_victim, seed)
    return SurrogateChoiceResult(
        rows, summary, reverse, {"surrogates": names, "victims": names,
                                 "both_correct": rates.tolist()},
        claims, config).to_dict()


def _claims(summary: list[dict], by_victim: dict, seed: int) -> list[Claim]:
    """The best score that reads the victim beats each target-blind baseline (paired over
    victims: the victims where both are defined)."""
    best = next((r["score"] for r in summary if not r["blind"]
                 and math.isfinite(r["mean"])), None)
    blind = [r["score"] for r in summary if r["blind"] and math.isfinite(r["mean"])]
    claims = []
    for baseline in blind if best is not None else []:
        d = [by_victim[v][best] - by_victim[v][baseline] for v in by_victim
             if math.isfinite(by_victim[v].get(best, math.nan))
             and math.isfinite(by_victim[v].get(baseline, math.nan))]
        claims.append(claim(f"{best} ranks surrogates better than the target-blind "
                            f"{baseline}: weighted τ per victim", d, interval="bootstrap",
                            seed=seed))
    return claims


def run_surrogate_choice(settings: SurrogateChoiceSettings = FULL, *,
                         store: ResultStore | None = None, cache_dir=None,
                         backend: str = "local", device=None,
                         show_progress: bool | None = None,
                         **backend_options) -> SurrogateChoiceResult:
    """The zoo's models (``train`` jobs, cached) and the study as one stored job."""
    from pathlib import Path

    from ..utils import cache_dir as default_cache_dir

    spec = settings.zoo
    if spec == "audit_zoo":
        from importlib import resources
        spec = str(resources.files("transferability.configs") / "audit_zoo.yaml")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    models = zoo_jobs(load_spec(spec), cache)
    dataset_from_spec(_data(settings.data), "test", seed=settings.seed)  # checked first
    final = Job("surrogate_choice", settings.to_dict(),
                {f"model:{n}": j for n, j in models.items()}, label=f"{len(models)} models")
    with open_store(store, cache) as store:
        run = run_jobs([final], store, study="surrogate-choice", backend=backend,
                       device=device, show_progress=show_progress, **backend_options)
    return SurrogateChoiceResult.from_dict(run.value(final))


STUDY = register_study(Study(
    "surrogate-choice", "Surrogate choice: which score picks the surrogate that fools a "
    "victim", SurrogateChoiceResult, "surrogate_choice", run_surrogate_choice, FULL, QUICK,
    help="Every model of a zoo in turn as the victim, the others as candidate surrogates: "
         "each pick-surrogate score's weighted τ against measured transfer, beside the "
         "target-blind baselines, and the reverse question (victims ranked by exposure to "
         "one surrogate). A few minutes on a CPU the first time (the zoo trains); --quick: "
         "fewer images and steps."))
