"""Which public model will fool my model? Rank candidate surrogates for a victim.

Liang et al. (2021, Thm. 2): knowledge transferability indicates adversarial
transferability. The victim's outputs (from a model, or a file of labels/logits: the
black-box case) serve as the target; each candidate is run once (features and logits) and
scored by every registered estimator that applies, and by its top-1 agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._results import Result
from .adversarial.affine import affine_fit_loss
from .estimators.registry import score as estimator_score
from .features import extract
from .jobs import Job, given, job_kind, run_jobs
from .model_args import check_fit
from .stats import bootstrap_ci, regret, top1_hit, weighted_tau

__all__ = ["VictimOutputs", "data_ids", "victim_outputs", "model_family", "read_victim_outputs",
           "SurrogateScores",
           "score_candidates", "validate_scores", "validate"]


@dataclass(frozen=True, eq=False)
class VictimOutputs(Result):
    """The victim's predicted labels (and logits when known) on images named by ``ids``."""

    ids: list
    labels: torch.Tensor
    logits: torch.Tensor | None = None


def data_ids(data) -> list:
    """How ``data`` names its images: a folder dataset's relative ``files``, else positions."""
    files = getattr(data, "files", None)
    return [str(f) for f in files] if files is not None else list(range(len(data)))


def victim_outputs(model: nn.Module, data, *, batch_size: int = 256) -> VictimOutputs:
    """The victim's outputs on ``data`` (one forward pass); ids are positions."""
    out = extract(model, data, batch_size=batch_size, name="victim")
    return VictimOutputs(data_ids(data), out.logits.argmax(1), out.logits)


def _check(ids, labels, logits, data) -> VictimOutputs:
    known = data_ids(data)
    where = {str(i): k for k, i in enumerate(known)}
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ValueError("victim: ids are duplicated; expected each image once")
    if any(i not in where for i in ids):
        stray = next(i for i in ids if i not in where)
        raise ValueError(f"victim: ids not in the data, e.g. {stray!r}")
    if len(ids) != len(known):
        raise ValueError(f"victim: ids missing; expected {len(known)} images, got {len(ids)}")
    labels = torch.as_tensor(np.asarray(labels)).long()
    num_classes = getattr(data, "num_classes", None)
    if num_classes is not None and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"victim: labels outside 0..{num_classes - 1}")
    if logits is not None and num_classes is not None and np.shape(logits)[1] != num_classes:
        raise ValueError(f"victim: {np.shape(logits)[1]} logit columns; the data has "
                         f"{num_classes} classes")
    order = torch.as_tensor(np.argsort([where[i] for i in ids]))
    return VictimOutputs(known, labels[order],
                         None if logits is None else torch.as_tensor(logits).float()[order])


def read_victim_outputs(path, data) -> VictimOutputs:
    """Victim outputs from a CSV (``id,label`` or ``id,logit_0..``) or NPZ (``ids`` with
    ``labels`` or ``logits``) file, checked against ``data``'s ids and class count."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            f = np.load(path, allow_pickle=False)
            ids = f["ids"]
            logits = f["logits"] if "logits" in f.files else None
            labels = f["labels"] if logits is None else logits.argmax(1)
        else:
            rows = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
            cols = rows.dtype.names
            ids = rows["id"]
            logit_cols = [c for c in cols if c.startswith("logit_")]
            logits = np.stack([rows[c] for c in logit_cols], 1) if logit_cols else None
            labels = rows["label"] if logits is None else logits.argmax(1)
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"path: malformed victim file {path}: {exc}") from None
    return _check(np.atleast_1d(ids).tolist(), np.atleast_1d(labels), logits, data)


@dataclass(frozen=True, eq=False)
class SurrogateScores(Result):
    """Scores per candidate: ``scores[score][candidate]``."""

    scores: dict
    skipped: dict

    def ranking(self, score: str) -> list[str]:
        row = self.scores[score]
        return sorted(row, key=lambda c: -row[c])


def model_family(model: nn.Module) -> str | None:
    """A model's architecture family, where it says: a zoo model's ``meta["arch"]``, a hub
    model's name without its size and variant (``timm:resnet18`` → ``resnet``,
    ``vit_base_patch16_224`` → ``vit``); None for other models."""
    meta = getattr(model, "meta", None) or {}
    name = meta.get("arch") or meta.get("model")
    if not isinstance(name, str):
        return None
    match = re.match(r"[a-z]+", name.lower().rsplit("/", 1)[-1])
    return match.group(0) if match else None


def score_candidates(candidates: dict, data, victim: VictimOutputs, *,
                     estimators=None, batch_size: int = 256,
                     victim_family: str | None = None) -> SurrogateScores:
    """Score every candidate (one forward pass each) against the victim's labels; with the
    victim's architecture family known, ``same_family`` (1 when a candidate's
    :func:`model_family` is the victim's) among the target-blind baselines."""
    from .ranking import output_estimators

    names = output_estimators() if estimators is None else list(estimators)
    if isinstance(data, torch.Tensor):
        check_fit(dict(candidates), data, "candidates")
    scores: dict = {"agreement": {}, "params": {}}
    skipped: dict = {}
    # the victim's predicted partition is the target task: consecutive ids over the classes
    # it predicts (a class it never predicts is no class of that task)
    target = torch.from_numpy(np.unique(victim.labels.numpy(), return_inverse=True)[1])
    for cname, model in candidates.items():
        out = extract(model, data, batch_size=batch_size, name=cname)
        scores["agreement"][cname] = float((out.logits.argmax(1) == victim.labels).float().mean())
        scores["params"][cname] = float(sum(p.numel() for p in model.parameters()))
        if victim_family is not None and model_family(model) is not None:
            scores.setdefault("same_family", {})[cname] = float(
                model_family(model) == victim_family)
        if len(out.labels):
            scores.setdefault("accuracy", {})[cname] = float(
                (out.logits.argmax(1) == out.labels).float().mean())
        if victim.logits is not None:  # higher is better: minus the normalised residual
            scores.setdefault("affine_fit", {})[cname] = -affine_fit_loss(
                out.logits.numpy(), victim.logits.numpy())
        for e in names:
            try:
                value = float(estimator_score(e, out, target))
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:  # cannot apply
                skipped[e] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                continue
            scores.setdefault(e, {})[cname] = value
    return SurrogateScores({k: v for k, v in scores.items() if v}, skipped)


def validate_scores(result: SurrogateScores, rates: dict, *, n_boot: int = 1000,
                    seed: int = 0) -> dict:
    """Per score: weighted Kendall τ against measured transfer ``rates`` (candidate → rate)
    with a bootstrap CI, top-1 hit and regret; candidates without a rate (NaN: nothing both
    models classify correctly) are left out, and a constant score gives τ = NaN."""
    out = {}
    for name, row in result.scores.items():
        cands = [c for c in row if np.isfinite(rates.get(c, np.nan))]
        if len(cands) < 3:  # too few measured rates to rank
            out[name] = {"tau_w": float("nan"), "ci": (float("nan"), float("nan")),
                         "top1_hit": None, "regret": float("nan"),
                         "note": f"{len(cands)} candidate(s) with a measured transfer rate; "
                                 "ranking needs 3"}
            continue
        x = np.array([row[c] for c in cands])
        y = np.array([rates[c] for c in cands])
        low, high = bootstrap_ci(weighted_tau, x, y, n_boot=n_boot, seed=seed)
        out[name] = {"tau_w": weighted_tau(x, y), "ci": (low, high),
                     "top1_hit": top1_hit(x, y), "regret": regret(x, y)}
    return out


@job_kind("pick_validation")
def validation_job(config: dict, inputs: dict) -> dict:
    """One candidate's transfer to the victim on 8-bit images, under both denominators."""
    from .attacks import AttackSpec
    from .transfer_matrix import transfer_matrix

    tm = transfer_matrix({"candidate": inputs["candidate"].artifact},
                         {"victim": inputs["victim"].artifact}, inputs["x"].artifact,
                         inputs["y"].artifact, attack=AttackSpec.of(config["attack"]),
                         batch_size=config["batch_size"], quantize=True, show_progress=False)
    return {p: float(tm.rates(p)[0, 0]) for p in ("both_correct", "all")}


def validate(result: SurrogateScores, candidates: dict, victim_model: nn.Module, x, y,
             attack, *, batch_size: int = 128, n_boot: int = 1000, seed: int = 0,
             store=None, backend: str = "local", device=None,
             show_progress: bool | None = None, **backend_options) -> dict:
    """Craft ``attack`` (an :class:`~transferability.attacks.AttackSpec`) on every candidate,
    measure its transfer to the victim on 8-bit images (:func:`~transferability.
    transfer_matrix.transfer_matrix` with ``quantize``), under both denominators (fooled
    among the images both classify correctly, and among all), and check each score's
    ranking against each. One stored job per candidate (``store``; ``backend="dask"``
    spreads them), so a rerun crafts nothing again."""
    from .attacks import AttackSpec

    config = {"attack": AttackSpec.of(attack).to_dict(), "batch_size": batch_size}
    shared = {"victim": given(victim_model, "victim"), "x": given(x, "images"),
              "y": given(y, "labels")}
    jobs = {c: Job("pick_validation", config, {"candidate": given(m, c), **shared}, label=c)
            for c, m in candidates.items()}
    run = run_jobs(list(jobs.values()), store, study="pick-surrogate", backend=backend,
                   device=device, show_progress=show_progress, **backend_options)
    out = {}
    for protocol in ("both_correct", "all"):
        rates = {c: run.value(j)[protocol] for c, j in jobs.items()}
        out[protocol] = {"rates": rates, "scores": validate_scores(result, rates,
                                                                   n_boot=n_boot, seed=seed)}
    return out
