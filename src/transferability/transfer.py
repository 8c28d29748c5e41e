"""Knowledge-transfer ground truth: linear probes and fine-tuning on a target task.

The linear probe follows Liang et al. (2021): freeze the source model, retrain a linear
head on its penultimate features with SGD and a cosine schedule, report target test
accuracy. Few-shot probes (``shots`` per class, averaged over ``repeats`` draws) are the
discriminative ground truth on easy targets, where every source's full-data probe is
nearly perfect (docs/architecture.md); all repeats train at once as one batched problem.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._results import Result
from ._validation import as_float64, as_labels, check_int, check_positive, check_seed
from .data.dataset import as_tensors
from .features import extract
from .models.classifier import Classifier, check_classifier, replace_head
from .training import evaluate, fit

__all__ = ["ProbeResult", "FineTuneResult", "probe_features", "linear_probe", "fine_tune"]


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
                   repeats: int = 1, seed: int = 0) -> ProbeResult:
    """Train a softmax-regression head on fixed features and test it.

    Each head standardises features with the statistics of its own training draw (a few-shot
    probe never sees the full training set). ``epochs`` defaults to the paper's 10, raised
    so that a probe takes at least 200 SGD steps (a 10-shot set is a single batch); an
    explicit ``epochs`` is used as given. With ``shots``, each of ``repeats`` heads sees a
    different stratified draw of ``shots`` samples per class; they train as one batched
    problem.
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
    else:
        index = _few_shot_indices(ytr, check_int(shots, "shots"), repeats, seed)
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
    """Target test accuracy/loss of a fine-tuned copy of the source (``model``, not
    serialised)."""

    accuracy: float
    loss: float
    model: nn.Module | None = field(default=None, repr=False, metadata={"serialize": False})


def fine_tune(model: Classifier, train, test, *, epochs: int = 5, lr: float = 0.01,
              freeze: int = 0, batch_size: int = 64, seed: int = 0,
              show_progress: bool | None = None) -> FineTuneResult:
    """Fine-tune a copy of ``model`` end to end (or all but its first ``freeze`` backbone
    blocks) with a new head for the target classes; ``model`` itself is left untouched."""
    check_classifier(model)
    n_blocks = len(model.backbone)
    freeze = check_int(freeze, "freeze", minimum=0, maximum=n_blocks)
    xtr, ytr = as_tensors(train, "train")
    num_classes = int(as_labels(ytr, "train labels").max()) + 1
    tuned = replace_head(copy.deepcopy(model), num_classes)
    for block in tuned.backbone[:freeze]:
        block.requires_grad_(False)
    fit(tuned, (xtr, ytr), epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
        show_progress=show_progress, desc="fine-tune")
    acc, loss = evaluate(tuned, test)
    return FineTuneResult(acc, loss, tuned)
