"""One training loop for everything: SGD + momentum, cosine/step schedule, seeded, with hooks.

Custom objectives plug in without a second loop:

* ``loss_fn(model, x, y) -> loss`` replaces cross-entropy (any objective of the model and
  a batch);
* ``step_fn(optimizer, closure)`` replaces ``closure(); optimizer.step()``; ``closure()``
  zeroes the gradients, recomputes the loss, back-propagates and returns it, so SAM's
  two-pass update (Foret et al. 2021) is a ``step_fn``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._results import Result
from ._validation import (
    check_choice,
    check_int,
    check_positive,
    check_seed,
    check_unit_interval,
    model_device,
)
from .data.dataset import as_tensors
from .features import predict
from .utils import batches, progress, seed_everything

__all__ = ["History", "fit", "evaluate", "cross_entropy_loss", "FIT_OPTIONS",
           "check_fit_options"]

SCHEDULES = ("cosine", "step", "constant")
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 16


def _check_milestones(value, name: str) -> tuple[float, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name}: expected a list of fractions in (0, 1), got {value!r}")
    return tuple(check_unit_interval(m, name) for m in value)


#: The options of :func:`fit` that a zoo spec's ``train:`` may set, each with its check.
FIT_OPTIONS = {
    "epochs": lambda v, n: check_int(v, n, maximum=MAX_EPOCHS),
    "lr": lambda v, n: check_positive(v, n),
    "momentum": lambda v, n: check_unit_interval(v, n),
    "weight_decay": lambda v, n: check_positive(v, n, allow_zero=True),
    "batch_size": lambda v, n: check_int(v, n, maximum=MAX_BATCH_SIZE),
    "schedule": lambda v, n: check_choice(v, n, SCHEDULES),
    "milestones": _check_milestones,
    "seed": lambda v, n: check_seed(v, n),
}


def check_fit_options(options, where: str = "") -> dict:
    """Check :func:`fit` options (names and values) before any training; return them checked.

    ``where`` prefixes the argument names in errors, e.g. ``"spec: models[2].train."``.
    """
    if not hasattr(options, "items"):
        raise ValueError(f"{where or 'train'}: expected a mapping of training options, got "
                         f"{type(options).__name__}")
    unknown = sorted(set(options) - set(FIT_OPTIONS))
    if unknown:
        raise ValueError(f"{where}{unknown[0]}: unknown training option; allowed: "
                         f"{', '.join(sorted(FIT_OPTIONS))}")
    return {k: FIT_OPTIONS[k](v, f"{where}{k}") for k, v in options.items()}

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
StepFn = Callable[[torch.optim.Optimizer, Callable[[], torch.Tensor]], object]


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default ``loss_fn``: mean cross-entropy of ``model(x)`` against ``y``."""
    return F.cross_entropy(model(x), y)


@dataclass(frozen=True)
class History(Result):
    """Per-epoch records (``epoch, lr, train_loss, eval_acc, eval_loss, seconds``)
    and the state_dicts saved at ``snapshot_epochs`` (on the CPU; not serialised)."""

    epochs: list[dict] = field(default_factory=list)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict,
                                                          metadata={"serialize": False})

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}


@torch.no_grad()
def evaluate(model: nn.Module, test, *, batch_size: int = 256) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``model`` on ``test``, in eval mode (restored)."""
    x, y = as_tensors(test, "test")
    logits = predict(model, x, batch_size=batch_size).float().cpu()
    return ((logits.argmax(1) == y).double().mean().item(),
            F.cross_entropy(logits, y).item())


def _lr_factor(schedule: str, epoch_progress: float, milestones: Sequence[float]) -> float:
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch_progress))
    if schedule == "step":
        return 0.1 ** sum(epoch_progress >= m for m in milestones)
    return 1.0


def fit(model: nn.Module, train, *, epochs: int = 3, lr: float = 0.05,
        momentum: float = 0.9, weight_decay: float = 5e-4, batch_size: int = 128,
        schedule: str = "cosine", milestones: Sequence[float] = (0.5, 0.75), seed: int = 0,
        test=None, snapshot_epochs: Iterable[int] = (), loss_fn: LossFn | None = None,
        step_fn: StepFn | None = None, params: Iterable[nn.Parameter] | None = None,
        on_epoch_end: Callable[[int, nn.Module, dict], None] | None = None,
        show_progress: bool | None = None, desc: str = "train") -> History:
    """Train ``model`` in place with SGD and return its :class:`History`.

    Args:
        train: an ``ImageDataset``, ``(x, y)`` tensors or a torch ``Dataset``.
        schedule: ``"cosine"`` (per step, to zero), ``"step"`` (×0.1 at each ``milestones``
            fraction of training) or ``"constant"``.
        seed: seeds initial shuffling and any randomness inside ``loss_fn``.
        snapshot_epochs: epochs (1-based) after which to keep a copy of the weights,
            for early-stopping studies.
        params: the parameters to optimise (default: all with ``requires_grad``), for
            freeze levels and linear probes. A BatchNorm whose affine parameters are not
            trained runs in eval mode, so its running statistics stay frozen too
            (Chen et al. 2021's BN freezing). Every submodule's mode is restored at the end.
        on_epoch_end: ``callback(epoch, model, record)``, e.g. to track sharpness.
    """
    check_fit_options({"epochs": epochs, "lr": lr, "momentum": momentum,
                       "weight_decay": weight_decay, "batch_size": batch_size,
                       "schedule": schedule, "milestones": milestones, "seed": seed})
    x, y = as_tensors(train, "train")
    loss_fn = loss_fn or cross_entropy_loss
    device = model_device(model)
    generator = seed_everything(seed)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("params: nothing to train (no parameter requires grad)")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    snapshot_epochs = set(snapshot_epochs)
    steps_per_epoch = math.ceil(len(y) / batch_size)
    total = epochs * steps_per_epoch
    history = History()
    modes = [(m, m.training) for m in model.modules()]
    trained = {id(p) for p in params}
    frozen_bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and m.affine and not any(id(p) in trained for p in m.parameters())]
    step = 0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        for bn in frozen_bn:  # a frozen BatchNorm keeps its statistics frozen too
            bn.eval()
        perm = torch.randperm(len(y), generator=generator)
        loss_sum, seen = 0.0, 0
        bar = progress(batches(perm, batch_size=batch_size), total=steps_per_epoch,
                       desc=f"{desc} epoch {epoch}/{epochs}", enabled=show_progress)
        for (idx,) in bar:
            xb, yb = x[idx].to(device), y[idx].to(device)
            for group in optimizer.param_groups:
                group["lr"] = lr * _lr_factor(schedule, step / total, milestones)

            def closure(xb=xb, yb=yb):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model, xb, yb)
                loss.backward()
                return loss

            if step_fn is None:
                loss = closure()
                optimizer.step()
            else:
                loss = step_fn(optimizer, closure)
            loss_sum += float(loss.detach()) * len(idx)
            seen += len(idx)
            step += 1
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": loss_sum / seen}
        if test is not None:
            record["eval_acc"], record["eval_loss"] = evaluate(model, test)
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        if epoch in snapshot_epochs:
            history.snapshots[epoch] = copy.deepcopy({k: v.detach().cpu()
                                                      for k, v in model.state_dict().items()})
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, record)
    for m, mode in modes:
        m.training = mode
    optimizer.zero_grad(set_to_none=True)
    return history
