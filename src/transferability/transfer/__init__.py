"""Knowledge-transfer ground truth: linear probes and fine-tuning on a target task.

The linear probe follows Liang et al. (2021): freeze the source model, retrain a linear
head on its penultimate features with SGD and a cosine schedule, report target test
accuracy. Few-shot probes (``shots`` per class, averaged over ``repeats`` draws) are the
discriminative ground truth on easy targets, where every source's full-data probe is
nearly perfect (docs/architecture.md); all repeats train at once as one batched problem.

Fine-tuning (:func:`fine_tune`) trains a copy of the source with a new head at a freeze
level, optionally with the robust-transfer recipes: learning without forgetting (Shafahi
et al., ICLR 2020; :mod:`.lwf`), CARTL's non-expansive fine-tuning and BatchNorm freezing
(Chen et al., ICML 2021; :mod:`.neft`). CARTL's full recipe is a ``cartl_fdm`` source
fine-tuned with ``freeze=k, neft_beta=β, freeze_bn=True``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._results import Result
from .._validation import (
    as_float64,
    as_labels,
    check_choice,
    check_fraction,
    check_int,
    check_positive,
    check_seed,
)
from ..data.dataset import as_tensors
from ..features import extract, feature_tap
from ..models.classifier import Classifier, replace_head
from ..training import History, TrainingMethod, check_fit_options, evaluate, fit
from ..utils import seed_everything
from .lwf import LwF
from .neft import apply_neft, bake_neft

__all__ = ["ProbeResult", "FineTuneResult", "FINE_TUNE_METHODS", "probe_features", "linear_probe",
           "fine_tune"]


@dataclass(frozen=True)
class ProbeResult(Result):
    """Target test accuracy/loss of a retrained linear head (mean over ``repeats``)."""

    accuracy: float
    loss: float
    accuracy_std: float = 0.0
    accuracies: list[float] = field(default_factory=list)
    shots: int | None = None
    repeats: int = 1
    # the first repeat's head, on raw features; not serialised
    head: nn.Linear | None = field(default=None, repr=False, metadata={"serialize": False})


def _few_shot_indices(y: np.ndarray, shots: int, repeats: int, seed: int) -> np.ndarray:
    """``repeats`` × (shots·C) stratified index draws, vectorised over classes."""
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < shots:
        raise ValueError(f"shots: {shots} per class requested but the smallest target class "
                         f"has {counts.min()} training samples")
    rng = np.random.default_rng(seed)
    order = np.argsort(y, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # random ranks within each class: argsort of uniform keys, per repeat
    keys = rng.random((repeats, len(y))) + y[order][None, :]  # class id keeps blocks apart
    within = np.argsort(keys, axis=1)  # sorted: class blocks, shuffled inside
    pick = (starts[:, None] + np.arange(shots)[None, :]).ravel()
    return order[within[:, pick]]


def probe_features(train_features, train_labels, test_features, test_labels, *,
                   epochs: int | None = None, lr: float = 0.1, momentum: float = 0.9,
                   weight_decay: float = 5e-4, batch_size: int = 128, shots: int | None = None,
                   repeats: int = 1, seed: int = 0, draw: int | None = None) -> ProbeResult:
    """Train a softmax-regression head on fixed features and test it.

    Each head standardises features with the statistics of its own training draw (a few-shot
    probe never sees the full training set). ``epochs`` defaults to the paper's 10, raised
    so that a probe takes at least 200 SGD steps (a 10-shot set is a single batch); an
    explicit ``epochs`` is used as given. With ``shots``, each of ``repeats`` heads sees a
    different stratified draw of ``shots`` samples per class; they train as one batched
    problem. ``draw=r`` trains only the r-th of those draws (the same head, alone: a study
    job), whatever ``repeats`` is.
    """
    check_positive(lr, "lr")
    seed = check_seed(seed)
    repeats = check_int(repeats, "repeats", maximum=10_000)
    batch_size = check_int(batch_size, "batch_size")
    ytr = as_labels(train_labels, "train_labels")
    yte = as_labels(test_labels, "test_labels", contiguous=False)
    xtr = torch.as_tensor(as_float64(train_features, "train_features", ndim=2), dtype=torch.float32)
    xte = torch.as_tensor(as_float64(test_features, "test_features", ndim=2), dtype=torch.float32)
    if len(xtr) != len(ytr) or len(xte) != len(yte) or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train_features/test_features: expected one row per label and equal "
                         f"widths, got {tuple(xtr.shape)} for {len(ytr)} labels and "
                         f"{tuple(xte.shape)} for {len(yte)} labels")
    num_classes = int(max(ytr.max(), yte.max())) + 1
    if shots is None:
        index = np.broadcast_to(np.arange(len(ytr)), (repeats, len(ytr)))
    elif draw is None:
        index = _few_shot_indices(ytr, check_int(shots, "shots"), repeats, seed)
    else:
        draw = check_int(draw, "draw", minimum=0)
        index = _few_shot_indices(ytr, check_int(shots, "shots"), draw + 1, seed)[draw:]
    n = index.shape[1]
    steps_per_epoch = math.ceil(n / batch_size)
    if epochs is None:
        epochs = max(10, math.ceil(200 / steps_per_epoch))
    epochs = check_int(epochs, "epochs")

    index_t = torch.from_numpy(np.array(index))
    xs, ys = xtr[index_t], torch.as_tensor(ytr)[index_t]  # R × n × D, R × n
    mean, std = xs.mean(1, keepdim=True), xs.std(1, keepdim=True).clamp_min(1e-6)
    xs = (xs - mean) / std
    gen = torch.Generator().manual_seed(seed)
    R, D = repeats, xtr.shape[1]
    weight = torch.zeros(R, D, num_classes, requires_grad=True)
    bias = torch.zeros(R, 1, num_classes, requires_grad=True)
    opt = torch.optim.SGD([weight, bias], lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch_size):
            pos = perm[s:s + batch_size]
            logits = torch.baddbmm(bias, xs[:, pos], weight)  # R × B × C
            loss = F.cross_entropy(logits.flatten(0, 1), ys[:, pos].flatten()) * R
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        logits = torch.baddbmm(bias, (xte[None] - mean) / std, weight)  # R × N × C
        yte_t = torch.as_tensor(yte)
        accs = (logits.argmax(-1) == yte_t).double().mean(1).numpy()
        losses = F.cross_entropy(logits.transpose(1, 2), yte_t.expand(R, -1),
                                 reduction="none").mean(1).numpy()
        # fold the standardisation into the first head: W' = W/σ, b' = b − (μ/σ)·W
        mu, sigma = mean[0, 0], std[0, 0]
        w, b = weight[0] / sigma[:, None], bias[0, 0] - (mu / sigma) @ weight[0]
        head = nn.Linear(D, num_classes)
        head.weight.copy_(w.T)
        head.bias.copy_(b)
    return ProbeResult(float(accs.mean()), float(losses.mean()),
                       float(accs.std(ddof=1)) if R > 1 else 0.0, accs.tolist(),
                       shots, R, head)


def linear_probe(model: nn.Module, train, test, *, batch_size: int = 128,
                 epochs: int | None = None, lr: float = 0.1, shots: int | None = None,
                 repeats: int = 1, seed: int = 0, layer: str | None = None,
                 layer_input: bool = False) -> ProbeResult:
    """Freeze ``model``, retrain a linear head on its penultimate features, test on ``test``.

    ``train``/``test`` are ``ImageDataset``s, ``(x, y)`` pairs or torch Datasets. See
    :func:`probe_features` for ``shots``/``repeats`` and
    :mod:`transferability.features` for ``layer``/``layer_input``.
    """
    xtr, ytr = as_tensors(train, "train")
    xte, yte = as_tensors(test, "test")
    ftr = extract(model, xtr, layer=layer, layer_input=layer_input).features
    fte = extract(model, xte, layer=layer, layer_input=layer_input).features
    return probe_features(ftr, ytr, fte, yte, epochs=epochs, lr=lr, batch_size=batch_size,
                          shots=shots, repeats=repeats, seed=seed)


@dataclass(frozen=True)
class FineTuneResult(Result):
    """Target test accuracy/loss of a fine-tuned copy of the source (NaN without ``test``),
    the training :class:`~transferability.training.History`, the options (``config``) and
    the tuned ``model`` (not serialised)."""

    accuracy: float
    loss: float
    history: History = field(default_factory=History)
    config: dict = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False, metadata={"serialize": False})


FINE_TUNE_METHODS = ("standard", "lwf")


def _blocks(model: nn.Module) -> tuple[list[nn.Module], str]:
    """The blocks ``freeze`` counts and the head's attribute name: a ``Classifier``'s
    ``backbone`` entries and ``head``; else the top-level children in registration order,
    the last of which must be the ``nn.Linear`` head."""
    if isinstance(model, Classifier):
        return list(model.backbone), "head"
    children = list(model.named_children())
    if not children or not isinstance(children[-1][1], nn.Linear):
        raise ValueError(f"model: fine_tune needs a Classifier or a model whose last top-level "
                         f"child is its nn.Linear head; {type(model).__name__} has none")
    return [m for _, m in children[:-1]], children[-1][0]


def _check_freeze(freeze, n_blocks: int) -> int | str | None:
    if freeze is None or (isinstance(freeze, str) and freeze == "all"):
        return freeze
    if isinstance(freeze, str):
        raise ValueError(f"freeze: expected None, an integer in [0, {n_blocks}] or 'all', got "
                         f"{freeze!r}")
    return check_int(freeze, "freeze", minimum=0, maximum=n_blocks) or None


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


class _FineTuning(TrainingMethod):
    """``fine_tune``'s step: the inner method's loss with ``frozen`` modules kept in eval
    mode, and a warm start: for the first ``warm_start`` fraction of the steps only the head
    trains (``body`` in eval mode, its parameters without gradients)."""

    def __init__(self, inner: TrainingMethod, frozen: list[nn.Module], body: list[nn.Module],
                 body_params: list[nn.Parameter], warm_start: float, epochs: int):
        super().__init__()
        self.inner, self.frozen, self.body, self.body_params = inner, frozen, body, body_params
        self.warm_start, self.epochs = warm_start, epochs
        self.warm_steps = self.steps = 0

    def config(self) -> dict:
        return self.inner.config()

    def on_train_begin(self, model, steps_per_epoch):
        self.warm_steps = int(self.warm_start * self.epochs * steps_per_epoch)
        for p in self.body_params if self.warm_steps else ():
            p.requires_grad_(False)
        self.inner.on_train_begin(model, steps_per_epoch)

    def loss(self, model, x, y):
        warm = self.steps < self.warm_steps
        for m in self.body:
            m.training = not warm
        for m in self.frozen:
            m.training = False
        return self.inner.loss(model, x, y)

    def on_step_end(self, model, epoch, step_in_epoch):
        self.steps += 1
        if self.steps == self.warm_steps:
            for p in self.body_params:
                p.requires_grad_(True)
        self.inner.on_step_end(model, epoch, step_in_epoch)

    def result(self) -> dict:
        return self.inner.result()


def _checked_options(model: nn.Module, lwf: bool, layer, lam, warm_start, neft_beta,
                     freeze_bn, reuse_bn_stats) -> tuple:
    """``fine_tune``'s options checked, with their defaults for the method."""
    if lwf:
        with feature_tap(model, layer):  # checks layer= before any work
            pass
    elif layer is not None:
        raise ValueError("layer: only method='lwf' uses features; leave it None")
    lam = check_positive(lam, "lam", allow_zero=True)
    warm_start = (0.5 if lwf else 0.0) if warm_start is None else (
        0.0 if warm_start == 0 else check_fraction(warm_start, "warm_start"))
    neft_beta = None if neft_beta is None else check_positive(neft_beta, "neft_beta")
    freeze_bn = _check_flag(freeze_bn, "freeze_bn")
    reuse_bn_stats = lwf if reuse_bn_stats is None else _check_flag(reuse_bn_stats,
                                                                    "reuse_bn_stats")
    return lam, warm_start, neft_beta, freeze_bn, reuse_bn_stats


def _refuse_with_a_frozen_body(lwf: bool, neft_beta, warm_start: float) -> None:
    """With ``freeze="all"`` only the head trains: what needs a trained body is refused."""
    for name, bad, why in (("method", lwf, "LwF's penalty on frozen features is constant"),
                           ("neft_beta", neft_beta is not None, "nothing to reparametrise"),
                           ("warm_start", warm_start > 0, "there is no body to warm up")):
        if bad:
            raise ValueError(f"{name}: with freeze='all' only the head trains: {why}")


def _with_new_head(model: nn.Module, head_name: str, num_classes: int):
    """A copy of ``model`` with a new head for ``num_classes``; its blocks and the head."""
    tuned = copy.deepcopy(model)
    blocks, _ = _blocks(tuned)
    if isinstance(tuned, Classifier):
        replace_head(tuned, num_classes)
    else:
        old = getattr(tuned, head_name)
        setattr(tuned, head_name, nn.Linear(old.in_features, num_classes).to(
            old.weight.device, old.weight.dtype))
    return tuned, blocks, getattr(tuned, head_name)


def fine_tune(model: nn.Module, train, test=None, *, method: str = "standard",
              freeze: int | str | None = None, epochs: int = 5, lr: float = 0.01,
              momentum: float = 0.9, weight_decay: float = 5e-4, batch_size: int = 64,
              lam: float = 0.005, warm_start: float | None = None,
              neft_beta: float | None = None, freeze_bn: bool = False,
              reuse_bn_stats: bool | None = None, layer: str | None = None, seed: int = 0,
              show_progress: bool | None = None) -> FineTuneResult:
    """Fine-tune a copy of the source ``model`` with a new head for the target's classes
    (SGD with momentum, cosine schedule); ``model`` itself is never modified.

    Args:
        freeze: ``None`` (or 0) trains everything; ``k`` trains only the last ``k`` blocks
            and the head; ``"all"`` only the head (a linear probe on frozen features). Blocks
            are a ``Classifier``'s ``backbone`` entries, else the model's top-level children
            but the last (its ``nn.Linear`` head). Frozen parts run in eval mode, stay
            bit-identical and keep ``requires_grad=False``.
        method: ``"standard"`` (cross-entropy) or ``"lwf"``: Shafahi et al. (ICLR 2020)'s
            LwF, CE + ``lam``·mean ‖φ − φ₀‖₁ on the features of ``layer`` (default: the
            head's input), φ₀ the source's, computed once (:mod:`.lwf`; their recipe: also
            ``weight_decay=2e-4``).
        warm_start: the fraction of the steps, in [0, 1), for which only the head trains
            first (the body in eval mode); default 0.5 for ``"lwf"`` (their code), else 0.
        neft_beta: CARTL's NEFT (Chen et al., ICML 2021): every Conv2d and Linear of the
            trained blocks becomes β·W/σ(W) during training, σ the layer's operator norm
            (:mod:`transferability.transfer.neft`), then baked into plain weights. The new
            head stays free, so the logits can still scale to fit the cross-entropy.
        freeze_bn: the BatchNorm affine parameters (γ, β) of the trained blocks stay the
            source's; as ``fit`` runs a BatchNorm with frozen affine parameters in eval mode,
            their running statistics stay the source's too (CARTL's ``--freeze-bn``).
        reuse_bn_stats: every BatchNorm runs in eval mode, normalising with the source's
            running statistics and keeping them, while γ, β still train unless
            ``freeze_bn`` (CARTL's reused statistics); default: True for ``"lwf"``.
        seed: seeds the new head, the shuffling and NEFT's power iteration.
    """
    method = check_choice(method, "method", FINE_TUNE_METHODS)
    lwf = method == "lwf"
    check_fit_options({"epochs": epochs, "lr": lr, "momentum": momentum,
                       "weight_decay": weight_decay, "batch_size": batch_size, "seed": seed})
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected an nn.Module, got {type(model).__name__}")
    lam, warm_start, neft_beta, freeze_bn, reuse_bn_stats = _checked_options(
        model, lwf, layer, lam, warm_start, neft_beta, freeze_bn, reuse_bn_stats)
    blocks, head_name = _blocks(model)
    freeze = _check_freeze(freeze, len(blocks))
    if freeze == "all":  # only the head trains
        _refuse_with_a_frozen_body(lwf, neft_beta, warm_start)
    xtr, ytr = as_tensors(train, "train")
    seed_everything(seed)  # the new head
    tuned, blocks, head = _with_new_head(model, head_name,
                                         int(as_labels(ytr, "train labels").max()) + 1)
    body = [] if freeze == "all" else blocks[len(blocks) - (freeze or len(blocks)):]
    tuned.requires_grad_(False)
    (tuned if freeze is None else nn.ModuleList([*body, head])).requires_grad_(True)
    bns = [m for b in body for m in b.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns if freeze_bn else ():
        bn.requires_grad_(False)
    if neft_beta is not None:
        apply_neft(body, neft_beta)
    inner = LwF(lam, layer) if lwf else TrainingMethod()
    if lwf:
        xtr, ytr = inner.indexed(model, (xtr, ytr))  # φ₀ once, from the source
    trained = {m for part in (*body, head) for m in part.modules()}
    frozen = [m for m in tuned.modules() if m not in trained and trained.isdisjoint(m.modules())]
    frozen += bns if freeze_bn or reuse_bn_stats else []
    head_ids = {id(p) for p in head.parameters()}
    body_params = [p for p in tuned.parameters() if p.requires_grad and id(p) not in head_ids]
    runner = _FineTuning(inner, frozen, [m for b in body for m in b.modules()], body_params,
                         warm_start, epochs)
    history = fit(tuned, (xtr, ytr), method=runner, epochs=epochs, lr=lr, momentum=momentum,
                  weight_decay=weight_decay, batch_size=batch_size, seed=seed,
                  show_progress=show_progress, desc="fine-tune")
    if neft_beta is not None:
        bake_neft(tuned)
    acc, loss = evaluate(tuned, test) if test is not None else (math.nan, math.nan)
    return FineTuneResult(acc, loss, history, {
        "method": method, "freeze": freeze, "epochs": epochs, "lr": float(lr),
        "momentum": float(momentum), "weight_decay": float(weight_decay),
        "batch_size": batch_size, "lam": lam if lwf else None, "warm_start": warm_start,
        "neft_beta": neft_beta, "freeze_bn": freeze_bn, "reuse_bn_stats": reuse_bn_stats,
        "layer": layer, "seed": seed}, tuned)
