"""The adversarial ↔ knowledge transferability study (Liang et al., ICML 2021).

For a zoo of source models, a target task and a reference model trained on it:

- **knowledge transfer** (ground truth): few-shot and full-data linear-probe accuracy on
  the target, and the closed-form affine-fit loss of the source's outputs to the labels;
- **predictors**: the knowledge estimators (LEEP, NCE, H-score, LogME, TransRate) and the
  adversarial scores in the paper's direction, α^{T→S} (attacks crafted on the target
  reference, shown to the source): α1, α2, α12, α1·α2, gradient alignment, attribution
  affinity;
- **agreement**: weighted τ, Spearman and Pearson of every predictor with the few-shot probe
  accuracy, each with a bootstrap CI over sources;
- **the reverse direction**: a transfer matrix between the reference and each transferred
  model (source + probe head); does knowledge transfer between two models (the affine fit
  of one's outputs from the other's) predict measured adversarial transfer between them?
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from .._results import Result
from .._threads import limit_threads
from .._validation import Each, Flag, Integer, Optional, Seed, Text, check_same_device
from ..adversarial import adversarial_scores, affine_fit_loss, attack_reference
from ..attacks import AttackRule, AttackSpec
from ..data import ImageDataset, Splitter, check_per_class, per_class, split_indices
from ..devices import current_precision
from ..estimators import check_estimator_data, list_estimators, score
from ..features import Outputs, extract
from ..jobs import Given, Job, Output, ResultStore, given, job_kind, open_store, run_jobs
from ..jobs.graph import walk
from ..ranking import (
    ReferenceAccuracy,
    output_estimators,
    reference_accuracy,
)
from ..stats import correlation_table, undefined_correlation
from ..transfer import probe_features
from ..transfer_matrix import TransferMatrix
from . import Settings, Study, register_study, setting

log = logging.getLogger("transferability")

#: The transfer matrix's attack in the study: L∞ PGD, ε = 0.3, 10 steps.
MATRIX_ATTACK = AttackSpec("pgd", {"eps": 0.3, "steps": 10})

__all__ = ["StudyResult", "adv_knowledge_study", "adv_knowledge_jobs", "reference_spec",
           "load_reference", "stored_outputs", "stored_splitter", "model_input"]

AFFINE = "neg_affine_loss"  # −(affine-fit loss): higher = better, like every predictor


#: How ``--reference train`` trains its cnn: early stopping on a fifth of the train
#: images (patience 5, the best epoch kept); on 32×32 colour images, batches of 64 (the
#: colour tasks' models need more steps to leave chance, as the demo's colour settings).
REFERENCE_TRAIN = {"lr": 0.05, "early_stopping": {"patience": 5, "val_fraction": 0.2}}
REFERENCE_COLOUR = {"batch_size": 64}


def reference_epochs(n_train: int) -> int:
    """The default epoch budget of ``--reference train`` for ``n_train`` images: about
    250,000 images seen, between 5 and 50 epochs (early stopping may end it sooner)."""
    return max(5, min(50, math.ceil(250_000 / max(n_train, 1))))


def reference_name(target) -> str:
    """A safe, stable zoo name for the reference of ``target`` (any data argument or spec):
    ``reference-NAME`` for a bundled dataset's name, else a readable slug of the text's end
    and a short hash of all of it."""
    from ..utils import content_key

    if isinstance(target, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}", target):
        return f"reference-{target}"
    text = target if isinstance(target, str) else json.dumps(target, sort_keys=True, default=str)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[-40:].strip("-.") or "target"
    return f"reference-{slug}-{content_key(text)[:8]}"


def reference_spec(target, *, arch: str = "cnn", epochs: int = 3,
                   train_per_class: int | None = None, seed: int = 0,
                   train: Mapping | None = None) -> dict:
    """A zoo spec for the reference model: ``arch`` trained on the target task (f_T), on
    ``train_per_class`` images per class (default: all; the spec's data ``n_per_class``),
    with ``train`` options over lr 0.05 (e.g. :data:`REFERENCE_TRAIN`).

    ``seed`` must be the study's: it picks the target's train/test split, so the reference
    never sees the test images the study attacks.
    """
    data = {"dataset": target} if isinstance(target, str) else dict(target)
    if train_per_class:
        data["n_per_class"] = train_per_class
    return {"train": {"lr": 0.05, **(train or {}), "epochs": epochs, "seed": seed},
            "models": [{"name": reference_name(target), "arch": "cnn" if arch is None else arch,
                        "data": data}]}


def load_reference(reference: str, target, cache_dir=None, *, seed: int = 0,
                   epochs: int | None = None, train: ImageDataset | None = None,
                   device=None) -> nn.Module:
    """The CLI's ``--reference``: ``train`` (a cached cnn trained on ``target``'s split for
    ``seed`` with :data:`REFERENCE_TRAIN`, for ``epochs`` or :func:`reference_epochs`), or
    any model argument (:mod:`transferability.model_args`) naming one model, on ``device``.
    ``train``: the target's train split, if loaded already."""
    from ..data import dataset_from_spec
    from ..model_args import check_fit, load_models
    from ..zoo import build_zoo

    if reference != "train" and epochs is not None:
        raise ValueError("--reference-epochs: only with --reference train")
    if train is None:
        train = dataset_from_spec(target, "train", seed=seed)
    if reference != "train":
        models = load_models([reference], cache_dir, device=device)
        if len(models) != 1:
            raise ValueError(f"reference: expected one model, {reference!r} gives "
                             f"{len(models)}; pick one with SPEC:NAME")
        check_fit(models, train.x, "--reference", data=str(target),
                  num_classes=train.num_classes)
        return next(iter(models.values()))
    options = {**REFERENCE_TRAIN, **(REFERENCE_COLOUR if train.shape == (3, 32, 32) else {})}
    spec = reference_spec(target, seed=seed, train=options,
                          epochs=epochs or reference_epochs(len(train)))
    try:
        (model,) = build_zoo(spec, cache_dir, device=device).values()
    except ValueError as exc:  # the spec is ours, not the user's: name the option
        message = re.sub(r"^spec: (models\[0\]\.)?", "", str(exc))
        raise ValueError(f"--reference train: {message}") from None
    return model


@dataclass(frozen=True)
class StudyResult(Result):
    """Per-source rows, the predictors' agreement with the few-shot probe, the transfer
    matrix, and the reverse-direction rows and agreement."""

    rows: list[dict]
    predictors: list[str]
    truth: str
    correlations: list[dict]
    transfer_matrix: TransferMatrix | None
    reverse: list[dict] = field(default_factory=list)
    reverse_correlations: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    probe_correlations: list[dict] = field(default_factory=list)  # vs the full-data probe
    reference: ReferenceAccuracy | None = None


ModelInput = nn.Module | Job | Given


# ---- the study's jobs ------------------------------------------------------------------

def _outputs(output: Output) -> Outputs:
    return Outputs(**output.artifact)


@job_kind("features", artifact="tensors")
def features_job(config: dict, inputs: dict) -> Output:
    """Features, logits and labels of one model on one dataset."""
    data = inputs["data"].artifact
    out = extract(inputs["model"].artifact, data.x, data.y, layer=config["layer"],
                  layer_input=config["layer_input"], precision=config.get("precision", "fp32"))
    tensors = out.tensors()
    if config.get("float16"):  # big models' caches, on request: half the disk
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    return Output({"n": len(data), "features": int(out.features.shape[1])}, tensors)


def _feature_precision() -> dict:
    """The current forward precision (:func:`~transferability.devices.use_precision`, the
    command's ``--precision``) as ``features`` jobs' config: their results depend on it, so
    their keys hold it; fp32, the default, adds nothing (its keys stay as they were)."""
    precision = current_precision()
    return {} if precision == "fp32" else {"precision": precision}


def model_input(model: nn.Module) -> Given:
    """``model`` as a job input. A hub model is keyed by what names it (hub, model,
    weights, with the weights file's size and time) and its preprocessing, so a big network
    is not hashed; any other model by its content (:func:`~transferability.jobs.given`)."""
    meta = getattr(model, "meta", None)
    if not (isinstance(meta, dict) and meta.get("identity") and meta.get("hub")):
        return given(model)
    import hashlib
    import json
    from pathlib import Path

    weights = meta["weights"]
    stat = None
    if weights not in ("pretrained", "none"):
        st = Path(weights).stat()
        stat = [st.st_size, st.st_mtime_ns]
    text = json.dumps({"identity": meta["identity"], "file": stat,
                       "preprocess": meta.get("preprocess")}, sort_keys=True)
    return Given(hashlib.sha256(text.encode()).hexdigest()[:24], model, meta["identity"])


def stored_outputs(store: ResultStore | None, *, layer: str | None = None,
                   layer_input: bool = False, float16: bool = False):
    """``(name, model, data) -> Outputs`` (a ``rank_sources`` ``outputs_fn``) whose
    extractions are ``features`` jobs in ``store``, keyed by (model, weights, dataset,
    preprocessing, layer): ranking the same models twice extracts once. ``float16`` keeps
    the cached features and logits at half precision (returned as float32). Its
    ``prefetch(models, datasets)`` runs every extraction the store lacks at once."""
    config = {"layer": layer, "layer_input": layer_input, **({"float16": True} if float16
                                                              else {}), **_feature_precision()}

    def job(name: str, model: nn.Module, data) -> Job:
        return Job("features", config, {"model": model_input(model), "data": given(data)},
                   label=name)

    def outputs(name: str, model: nn.Module, data) -> Outputs:
        job_ = job(name, model, data)
        art = run_jobs([job_], store, study="rank", show_progress=False,
                       announce=False).artifact(job_)
        return Outputs(**{k: v.float() if v.is_floating_point() else v for k, v in art.items()})

    def prefetch(models: Mapping[str, nn.Module], datasets) -> None:
        """Extract what the store lacks for every model on every dataset, as one run (it
        says once how many jobs run)."""
        if store is not None:
            run_jobs([job(n, m, d) for n, m in models.items() for d in datasets], store,
                     study="rank")

    outputs.prefetch = prefetch
    return outputs


@job_kind("data_split", device=False)
def data_split_job(config: dict, inputs: dict) -> dict:
    """The seeded stratified split of users' data without a split of its own
    (:func:`~transferability.data.split_indices`): the seed, and which positions went to
    train and which to test."""
    train, test = split_indices(inputs["data"].artifact, config["test_fraction"],
                                config["seed"])
    return {"seed": config["seed"], "test_fraction": config["test_fraction"],
            "train": train.tolist(), "test": test.tolist()}


def stored_splitter(store: ResultStore | None, study: str = "rank") -> Splitter:
    """A ``splitter`` for :func:`~transferability.data.load_dataset` whose splits are
    ``data_split`` jobs in ``store``, keyed by the data's content, the seed and the test
    fraction: the split is recorded, and a rerun reads it back instead of drawing it."""
    def splitter(data: ImageDataset, test_fraction: float, seed: int):
        job = Job("data_split", {"seed": seed, "test_fraction": test_fraction},
                  {"data": given(data)}, label=data.name)
        value = run_jobs([job], store, study=study, show_progress=False,
                         announce=False).value(job)
        return value["train"], value["test"]
    return splitter


def target_splits(target, seed: int, *, test: bool = True):
    """A target's ``train`` (and ``test``) split, drawn now for the checks before any job,
    and ``record(store)``: the splits recorded in the store once the checks passed — an
    earlier run's split of the same data read back, and the datasets redrawn from it when it
    differs — returned as ``(train, test)``."""
    from ..data import dataset_from_spec, split_indices

    drawn = []

    def draw(data, test_fraction, draw_seed):
        positions = split_indices(data, test_fraction, draw_seed)
        drawn.append(((data, test_fraction, draw_seed), positions))
        return positions

    def load(splitter):
        return (dataset_from_spec(target, "train", seed=seed, splitter=splitter),
                dataset_from_spec(target, "test", seed=seed, splitter=splitter)
                if test else None)

    first = load(draw)

    def record(store: ResultStore | None):
        stored = stored_splitter(store)
        if any([list(map(int, p)) for p in stored(*split)] != [p.tolist() for p in positions]
               for split, positions in drawn):
            return load(stored)  # an earlier run drew it differently: keep its split
        return first

    return (*first, record)


@job_kind("knowledge_scores", device=False)
def knowledge_scores_job(config: dict, inputs: dict) -> dict:
    """The output estimators of one source on the target, and its affine-fit loss."""
    train, test = _outputs(inputs["train"]), _outputs(inputs["test"])
    with limit_threads(train.features.numel()):
        row = {n: score(n, train, train.labels) for n in config["estimators"]}
        row["affine_loss"] = affine_fit_loss(train.logits, train.labels,
                                             held_out=(test.logits, test.labels))
    return row


@job_kind("probe", artifact="tensors", device=False)
def probe_job(config: dict, inputs: dict) -> Output:
    """One linear probe: few-shot draw ``draw`` of ``shots`` per class, or (``shots``
    None) the full-data probe, whose head is kept for the transferred model."""
    train, test = _outputs(inputs["train"]), _outputs(inputs["test"])
    with limit_threads(train.features.numel()):
        probe = probe_features(train.features, train.labels, test.features, test.labels,
                               shots=config["shots"], draw=config["draw"], seed=config["seed"])
    head = None if config["shots"] else {"weight": probe.head.weight.detach(),
                                         "bias": probe.head.bias.detach()}
    return Output({"accuracy": probe.accuracy, "loss": probe.loss}, head)


@job_kind("reference_attack", artifact="tensors")
def reference_attack_job(config: dict, inputs: dict) -> Output:
    """The reference's side of α on ``alpha_per_class`` target images per class."""
    data = per_class(inputs["data"].artifact, config["alpha_per_class"], seed=config["seed"])
    attacked = attack_reference(inputs["reference"].artifact, data.x, data.y,
                                attack=AttackSpec.of(config["attack"]))
    return Output({"used": int(attacked["used"].sum())}, attacked)


@job_kind("reference_accuracy")
def reference_accuracy_job(config: dict, inputs: dict) -> dict:
    """The reference's accuracy on the target's test images (:class:`ReferenceAccuracy`)."""
    return reference_accuracy(inputs["reference"].artifact, inputs["data"].artifact).to_dict()


@job_kind("adversarial_scores")
def adversarial_scores_job(config: dict, inputs: dict) -> dict:
    """α^{T→S} and the other adversarial scores of one (reference, source) pair."""
    data = per_class(inputs["data"].artifact, config["alpha_per_class"], seed=config["seed"])
    return adversarial_scores(inputs["reference"].artifact,
                              {"source": inputs["source"].artifact}, data.x, data.y,
                              names=config["names"], attack=AttackSpec.of(config["attack"]),
                              attacked=inputs["attacked"].artifact)["source"]


@job_kind("model_fit")
def model_fit_job(config: dict, inputs: dict) -> float:
    """−(affine-fit loss) of the reference's logits from one source's logits, on
    ``per_class`` test images per class (the transfer matrix's)."""
    data = per_class(inputs["data"].artifact, config["per_class"], seed=config["seed"])
    ref = extract(inputs["reference"].artifact, data.x, name="reference").logits
    src = extract(inputs["source"].artifact, data.x, name="source", layer=config["layer"],
                  layer_input=config["layer_input"]).logits
    return -affine_fit_loss(src, ref)


def _agreement(scores: dict[str, list], truth: list, truth_name: str, sources: list[str],
               seed: int, why: str = "", notes: Mapping[str, str | None] = {}) -> list[dict]:
    """:func:`correlation_table` rows of the predictors whose values, like the truth's, are
    all defined; any other predictor gets an undefined row (NaN, shown n/a) whose ``note``
    is its entry in ``notes``, or names the column and the sources where a value is
    undefined, and ``why``."""
    def undefined(values) -> list[str]:
        return [s for s, v in zip(sources, values, strict=True) if not np.isfinite(v)]

    no_truth = undefined(truth)
    defined = {} if no_truth else {k: v for k, v in scores.items() if not undefined(v)}
    table = {c.estimator: c.as_dict()
             for c in (correlation_table(defined, truth, seed=seed) if defined else [])}
    rows = []
    for name, values in scores.items():
        if name not in table:
            column, where = (truth_name, no_truth) if no_truth else (name, undefined(values))
            table[name] = undefined_correlation(
                name, notes.get(name) or f"{column} is undefined for {', '.join(where)}{why}")
        rows.append(table[name])
    return rows


@job_kind("adv_knowledge_study", device=False)
def adv_knowledge_study_job(config: dict, inputs: dict) -> dict:
    """The study's tables from its parts' results (see :func:`adv_knowledge_study`)."""
    sources, seed = config["sources"], config["seed"]
    estimators = [*config["estimators"], *config["adversarial"]]
    rows = []
    for i, name in enumerate(sources):
        draws = [inputs[f"draw/{i}/{r}"].value["accuracy"] for r in range(config["repeats"])]
        scores = inputs[f"scores/{i}"].value
        rows.append({"source": name, "probe_acc": inputs[f"full/{i}"].value["accuracy"],
                     "fewshot_acc": float(np.mean(draws)),
                     "fewshot_std": float(np.std(draws, ddof=1)) if len(draws) > 1 else 0.0,
                     "affine_loss": scores["affine_loss"],
                     **{e: scores[e] for e in config["estimators"]},
                     **inputs[f"adv/{i}"].value})
        rows[-1][AFFINE] = -rows[-1]["affine_loss"]
    predictors = [*estimators, AFFINE]
    truth = "fewshot_acc"
    accuracy = ReferenceAccuracy.from_dict(inputs["reference_accuracy"].value)
    accuracy.withhold(rows, config["adversarial"])
    correlations, probe_correlations = (_agreement(
        {p: [r[p] for r in rows] for p in predictors}, [r[column] for r in rows], column,
        sources, seed, notes={a: accuracy.note for a in config["adversarial"]})
        for column in (truth, "probe_acc"))
    if not config.get("matrix", True):
        return StudyResult(rows, predictors, truth, correlations, None,
                           probe_correlations=probe_correlations, reference=accuracy).to_dict()
    names = ["reference", *sources]
    matrix = TransferMatrix.from_rows([TransferMatrix.from_dict(inputs[f"row/{i}"].value)
                                       for i in range(len(names))])
    rates = matrix.rates("both_correct")
    i_ref = matrix.surrogates.index("reference")
    reverse = [{"source": name, "model_fit": inputs[f"fit/{i}"].value,
                "adv_reference_to_source": float(rates[i_ref, matrix.victims.index(name)]),
                "adv_source_to_reference": float(rates[matrix.surrogates.index(name),
                                                       matrix.victims.index("reference")])}
               for i, name in enumerate(sources)]
    reverse_correlations = []
    for target in ("adv_reference_to_source", "adv_source_to_reference"):
        reverse_correlations += _agreement(
            {f"model_fit vs {target}": [r["model_fit"] for r in reverse]},
            [r[target] for r in reverse], target, sources, seed,
            why=" (no test image that both models classify correctly: the both_correct "
                "rate is 0/0)")
    return StudyResult(rows, predictors, truth, correlations, matrix, reverse,
                       reverse_correlations, probe_correlations=probe_correlations,
                       reference=accuracy).to_dict()


# ---- the graph -------------------------------------------------------------------------

def _input(model, label: str) -> Job | Given:
    return model if isinstance(model, Job | Given) else given(model, label)


def _check_inputs(reference, sources, train, test, *, alpha_per_class, shots, seed, layer,
                  layer_input) -> None:
    """What the jobs would otherwise find late: ``alpha_per_class`` against both splits and
    ``shots`` against the train split (:func:`~transferability.data.check_per_class`);
    every in-memory source run on two target images (they fit, the feature layer exists);
    the reference run on α's images: one output per target class, and at least one of
    those images classified correctly (α attacks only those)."""
    train, test = (d.value if isinstance(d, Given) else d for d in (train, test))
    if not isinstance(train, ImageDataset) or not isinstance(test, ImageDataset):
        return
    check_per_class(alpha_per_class, "alpha_per_class", train, test)
    check_per_class(shots, "shots", train)
    check_estimator_data(output_estimators(), train.class_counts(), "train")
    models = {name: m.value if isinstance(m, Given) else m
              for name, m in {"reference": reference, **sources}.items()}
    models = {name: m for name, m in models.items() if isinstance(m, nn.Module)}
    if models:
        check_same_device(**models)  # the transfer matrix shows each model's examples to all
    for name, model in models.items():
        if name != "reference":
            extract(model, train.x[:2], name=name, layer=layer, layer_input=layer_input)
    reference = models.get("reference")
    if reference is not None:
        images = per_class(train, alpha_per_class, seed=seed)
        logits = extract(reference, images.x, name="reference").logits
        if logits.shape[1] < train.num_classes:
            raise ValueError(f"reference: has {logits.shape[1]} outputs for a target of "
                             f"{train.num_classes} classes")
        if not (logits.argmax(1) == images.y).any():
            raise ValueError(f"reference: classifies none of the {len(images)} target images "
                             f"that α attacks ({alpha_per_class} per class) correctly, so α is "
                             "undefined; use a better reference or more images per class")


def _source_parts(i: int, name: str, src: Job | Given, feats, *, ref, data, attacked, where,
                  alpha_per_class: int, shots: int, repeats: int, seed: int, adv: dict,
                  matrix: bool) -> dict[str, Job]:
    """One source's jobs: its knowledge scores, few-shot and full probes, adversarial
    scores and (with the matrix) the affine fit."""
    pair = {"train": feats(i, "train"), "test": feats(i, "test")}
    parts = {f"scores/{i}": Job("knowledge_scores", {"estimators": output_estimators()}, pair,
                                label=name)}
    for r in range(repeats):
        parts[f"draw/{i}/{r}"] = Job("probe", {"shots": shots, "draw": r, "seed": seed},
                                     pair, label=f"{name} draw {r}")
    parts[f"full/{i}"] = Job("probe", {"shots": None, "draw": None, "seed": seed}, pair,
                             label=name)
    parts[f"adv/{i}"] = Job("adversarial_scores", {
        "alpha_per_class": alpha_per_class, "seed": seed, "attack": adv,
        "names": list_estimators("models")},
        {"reference": ref, "source": src, "data": data["train"], "attacked": attacked},
        label=name)
    if matrix:
        parts[f"fit/{i}"] = Job("model_fit", {"per_class": alpha_per_class, "seed": seed,
                                              **where},
                                {"reference": ref, "source": src, "data": data["test"]},
                                label=name)
    return parts


def adv_knowledge_jobs(reference: ModelInput, sources: Mapping[str, ModelInput],
                       train: ImageDataset | Given, test: ImageDataset | Given, *,
                       alpha_per_class: int = 20, attack: str | AttackSpec = "pgd",
                       matrix_attack: str | AttackSpec = MATRIX_ATTACK, shots: int = 10,
                       repeats: int = 5, seed: int = 0, layer: str | None = None,
                       layer_input: bool = False, matrix: bool = True) -> Job:
    """The study's job graph; its final job's value is a :class:`StudyResult` dict.

    ``attack`` is the α attack (laid over the authors', :data:`~transferability.
    adversarial.ALPHA_ATTACK`, in its job), ``matrix_attack`` the transfer matrix's (over
    :data:`MATRIX_ATTACK`); both seeded by ``seed`` unless they give one. ``matrix=False``
    leaves out the transfer matrix and the reverse direction (a benchmark over many sources
    needs only the scores and the probes).

    Models may be modules, :class:`~transferability.jobs.Given` inputs or jobs whose
    artifact is a model (a zoo's ``train`` jobs), so a benchmark can chain them.
    """
    if not shots or int(shots) < 1:
        raise ValueError(f"shots: the study's ground truth is a few-shot probe; expected a "
                         f"positive number of samples per class, got {shots!r}")
    specs = {}
    for name, value, defaults in (("attack", attack, {"seed": seed}),
                                  ("matrix_attack", matrix_attack,
                                   MATRIX_ATTACK.with_options(seed=seed))):
        if not isinstance(value, str | AttackSpec):
            raise ValueError(f"{name}: the study runs as stored jobs, keyed by their "
                             f"settings; expected an AttackSpec or a registered attack name, "
                             f"got {type(value).__name__}")
        specs[name] = AttackSpec.of(value).with_defaults(defaults).to_dict()
    if not isinstance(sources, Mapping) or not sources:
        raise ValueError("sources: expected a non-empty mapping from name to model")
    if "reference" in sources:
        raise ValueError("sources: the name 'reference' is the study's reference model; "
                         "rename that source")
    names = list(sources)
    _check_inputs(reference, sources, train, test, alpha_per_class=alpha_per_class,
                  shots=shots, seed=seed, layer=layer, layer_input=layer_input)
    ref = _input(reference, "reference")
    src = [_input(sources[n], n) for n in names]
    data = {"train": _input(train, "train"), "test": _input(test, "test")}
    where = {"layer": layer, "layer_input": bool(layer_input), **_feature_precision()}

    def feats(i, split):
        return Job("features", where, {"model": src[i], "data": data[split]},
                   label=f"{names[i]} on {split}")

    parts: dict[str, Job] = {"reference_accuracy": Job("reference_accuracy", {}, {
        "reference": ref, "data": data["test"]}, label="reference")}
    attacked = Job("reference_attack", {"alpha_per_class": alpha_per_class, "seed": seed,
                                        "attack": specs["attack"]},
                   {"reference": ref, "data": data["train"]}, label="reference")
    for i, name in enumerate(names):
        parts.update(_source_parts(i, name, src[i], feats, ref=ref, data=data,
                                   attacked=attacked, where=where,
                                   alpha_per_class=alpha_per_class, shots=shots,
                                   repeats=repeats, seed=seed, adv=specs["attack"],
                                   matrix=matrix))
    models = {"victim:reference": ref, "data": data["test"],
              **{f"victim:{n}": s for n, s in zip(names, src, strict=True)},
              **{f"head:{n}": parts[f"full/{i}"] for i, n in enumerate(names)}}
    for i, name in enumerate(["reference", *names] if matrix else []):
        parts[f"row/{i}"] = Job("transfer_row", {
            "surrogate": name, "per_class": alpha_per_class, "seed": seed,
            "attack": specs["matrix_attack"], **where}, models, label=f"{name} -> all")
    config = {"sources": names, "seed": seed, "shots": shots, "repeats": repeats,
              "alpha_per_class": alpha_per_class, **specs,
              "estimators": output_estimators(), "adversarial": list_estimators("models"),
              **where, **({} if matrix else {"matrix": False})}
    return Job("adv_knowledge_study", config, parts,
               label=f"{len(names)} sources on {getattr(data['train'].value, 'name', 'target')}"
               if isinstance(data["train"], Given) else f"{len(names)} sources")


#: Job kinds by the part of the study they measure (the result's ``timings``).
STAGES = {"features": "features", "knowledge_scores": "scores", "probe": "probes",
          "reference_accuracy": "alpha",
          "reference_attack": "alpha", "adversarial_scores": "alpha", "model_fit": "matrix",
          "transfer_row": "matrix"}


def adv_knowledge_study(reference: nn.Module, sources: Mapping[str, nn.Module],
                        train: ImageDataset, test: ImageDataset, *, alpha_per_class: int = 20,
                        attack: str | AttackSpec = "pgd",
                        matrix_attack: str | AttackSpec = MATRIX_ATTACK, shots: int = 10,
                        repeats: int = 5, seed: int = 0,
                        layer: str | None = None, layer_input: bool = False,
                        store: ResultStore | None = None, backend: str = "local",
                        show_progress: bool | None = None, **backend_options) -> StudyResult:
    """Run the study (see the module docstring) and return its tables.

    Every part is a stored job (:mod:`transferability.jobs`): a rerun, or a run after an
    interruption, computes only what the store lacks.

    Args:
        reference: a model trained on the target task (the paper's f_T).
        sources: source models by name; their outputs are their own (source) logits.
        train, test: the target task; α uses ``alpha_per_class`` training images per class,
            the transfer matrix as many test images per class.
        attack: the α attack, over the authors' defaults (L∞ PGD on predicted labels,
            ε = 0.1, 50 steps of 0.2·ε, random start).
        matrix_attack: the transfer matrix's attack, over :data:`MATRIX_ATTACK` (L∞ PGD,
            ε = 0.3, 10 steps).
        layer, layer_input: where the features come from (:mod:`transferability.features`).
        store: the results store (default: the one in the cache directory).
        backend: ``"local"`` or ``"dask"`` (with ``backend_options``).
    """
    final = adv_knowledge_jobs(reference, sources, train, test,
                               alpha_per_class=alpha_per_class, attack=attack,
                               matrix_attack=matrix_attack, shots=shots, repeats=repeats,
                               seed=seed, layer=layer, layer_input=layer_input)
    log.info("  %d sources: features, estimators, probes, α^(target→source) (%s), "
             "transfer matrix (%s)", len(sources), final.config["attack"],
             final.config["matrix_attack"])
    with open_store(store) as store:
        run = run_jobs([final], store, study="adv-knowledge", backend=backend,
                       show_progress=show_progress, **backend_options)
        timings: dict[str, float] = {}
        for job in walk([final]):
            record = store.get(job.key)
            stage = STAGES.get(job.kind)
            if record is not None and stage:
                timings[stage] = timings.get(stage, 0.0) + record.duration
    return dataclasses.replace(StudyResult.from_dict(run.value(final)), timings=timings)


# ---- the report's section ---------------------------------------------------------------



@dataclass(frozen=True)
class AdvKnowledgeSettings(Settings):
    """The settings of :func:`run_adv_knowledge`: the target, the sources (model
    arguments: zoo specs, checkpoints, ``py:`` entry points, hub models), the reference and
    the α attack, the probes."""

    target: str = setting("mnist", Text(), "target dataset (a name, or a data argument)")
    sources: tuple[str, ...] = setting(("demo",), Each(Text()),
                                       "source models: zoo specs ('demo', YAML), checkpoints, "
                                       "SPEC:NAME, py:MODULE:FUNCTION or hub models")
    reference: str = setting("train", Text(), "model trained on the target task for the "
                             "adversarial scores: 'train' (a cached cnn) or one model argument")
    reference_epochs: int | None = setting(None, Optional(Integer(1, 10_000)),
                                           "epochs of --reference train (default: by data "
                                           "size, with early stopping)")
    attack: AttackSpec = setting(AttackSpec("pgd"), AttackRule(factories=False),
                                 "the α attack (default: the authors', ε 0.1, 50 steps)")
    alpha_per_class: int = setting(20, Integer(1, 10_000),
                                   "target images per class for the adversarial scores (α)")
    shots: int = setting(10, Integer(1, 100_000), "few-shot probe: images per class")
    repeats: int = setting(5, Integer(1, 10_000), "few-shot draws to average")
    feature_layer: str | None = setting(None, Optional(Text()),
                                        "take features from this module (default: the input "
                                        "of the last nn.Linear)")
    feature_layer_input: bool = setting(False, Flag(), "take the input of --feature-layer "
                                                       "instead of its output")
    seed: int = setting(0, Seed(), "seed of the data draws, probes and attacks")


def run_adv_knowledge(settings: AdvKnowledgeSettings = AdvKnowledgeSettings(), *,
                      store: ResultStore | None = None, cache_dir=None,
                      backend: str = "local", device=None, show_progress: bool | None = None,
                      **backend_options) -> StudyResult:
    """The study from its settings: the target's splits and the models are read and
    checked (images per class, the models' fit to the images) before any job, then
    :func:`adv_knowledge_study` runs on ``backend`` and ``device``."""
    from ..data import check_per_class, dataset_from_spec
    from ..model_args import check_fit, load_models

    s = settings
    train = dataset_from_spec(s.target, "train", seed=s.seed)
    test = dataset_from_spec(s.target, "test", seed=s.seed)
    check_per_class(s.alpha_per_class, "alpha_per_class", train, test)
    check_per_class(s.shots, "shots", train)
    sources = load_models(list(s.sources), cache_dir, device=device)
    layer = {"layer": s.feature_layer, "layer_input": s.feature_layer_input}
    check_fit(sources, train.x, "sources", data=str(s.target), features=True, **layer)
    reference = load_reference(s.reference, s.target, cache_dir, seed=s.seed,
                               epochs=s.reference_epochs, train=train, device=device)
    with open_store(store, cache_dir) as store:
        return adv_knowledge_study(reference, sources, train, test,
                                   alpha_per_class=s.alpha_per_class, attack=s.attack,
                                   shots=s.shots,
                                   repeats=s.repeats, seed=s.seed, store=store, **layer,
                                   backend=backend, device=device,
                                   show_progress=show_progress, **backend_options)


#: The study's descriptor (``transferability study adv-knowledge``).
STUDY = register_study(Study(
    "adv-knowledge", "Adversarial ↔ knowledge transferability", StudyResult,
    "adv_knowledge_study", run_adv_knowledge, AdvKnowledgeSettings(),
    help="For every source: estimators, α^(target→source), gradient alignment, attribution "
         "affinity, linear probes and the affine fit; every score's agreement with the "
         "few-shot probe; a transfer matrix and the reverse direction (Liang et al. 2021)."))
