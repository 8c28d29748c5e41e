"""One training loop for every method: seeded shuffling, a schedule, callbacks, a history.

What a step does comes from a registered training method (``method="sgd"``, ``"sam"``,
``"lsam"``, ``"lgv"``, ``"gradient_alignment_penalty"``; :mod:`.methods`), the optimizer
from a factory (default: SGD with momentum), when to stop from callbacks
(:mod:`.callbacks`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .._deprecated import old_spellings
from .._results import Result
from .._validation import (
    check_choice,
    check_fraction,
    check_int,
    check_positive,
    check_seed,
    check_unit_interval,
    model_device,
    model_dtype,
)
from ..data.dataset import as_tensors
from ..features import predict, run_model
from ..utils import batches, progress, seed_everything
from .methods import TrainingMethod, create_training_method

__all__ = ["History", "fit", "evaluate", "FIT_OPTIONS", "check_fit_options", "SCHEDULES"]

SCHEDULES = ("cosine", "step", "constant")
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 16

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def _check_milestones(value, name: str) -> tuple[float, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name}: expected a list of fractions in (0, 1), got {value!r}")
    return tuple(check_unit_interval(m, name) for m in value)


def _check_early_stopping(value, name: str) -> dict:
    """A zoo entry's ``early_stopping: {patience, val_fraction}`` (defaults 5 and 0.2)."""
    if not isinstance(value, Mapping) or set(value) - {"patience", "val_fraction"}:
        raise ValueError(f"{name}: expected a mapping with patience and val_fraction, got "
                         f"{value!r}")
    return {"patience": check_int(value.get("patience", 5), f"{name}.patience",
                                  maximum=MAX_EPOCHS),
            "val_fraction": check_fraction(value.get("val_fraction", 0.2),
                                           f"{name}.val_fraction")}


#: The options of :func:`fit` that a zoo spec's ``train:`` may set, each with its check;
#: any other key is an option of the training method (``method:``).
FIT_OPTIONS = {
    "epochs": lambda v, n: check_int(v, n, maximum=MAX_EPOCHS),
    "lr": lambda v, n: check_positive(v, n),
    "momentum": lambda v, n: check_unit_interval(v, n),
    "weight_decay": lambda v, n: check_positive(v, n, allow_zero=True),
    "batch_size": lambda v, n: check_int(v, n, maximum=MAX_BATCH_SIZE),
    "schedule": lambda v, n: check_choice(v, n, SCHEDULES),
    "milestones": _check_milestones,
    "seed": lambda v, n: check_seed(v, n),
    "snapshot_every": lambda v, n: check_int(v, n, maximum=MAX_EPOCHS),
    "early_stopping": _check_early_stopping,
}


def check_fit_options(options, where: str = "") -> dict:
    """Check :func:`fit` options and the method's before any training; return them checked,
    the method's options completed by its defaults (its ``config()``), so that two spellings
    of one configuration compare equal. ``where`` prefixes argument names in errors, e.g.
    ``"spec: models[2].train."``. Plain SGD adds no keys."""
    if not hasattr(options, "items"):
        raise ValueError(f"{where or 'train'}: expected a mapping of training options, got "
                         f"{type(options).__name__}")
    checked = {k: FIT_OPTIONS[k](v, f"{where}{k}") for k, v in options.items()
               if k in FIT_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in FIT_OPTIONS}
    name = rest.pop("method", "sgd")
    if not isinstance(name, str):
        raise ValueError(f"{where}method: expected a method name, got {name!r}")
    try:
        method = create_training_method(name, **rest)
    except ValueError as exc:
        message = str(exc)
        if "unknown training option" in message:
            message += f"; fit options: {', '.join(sorted(FIT_OPTIONS))}"
        raise ValueError(f"{where}{message}") from None
    return {**checked, **({} if name == "sgd" else method.config())}


#: Record names of ``History`` schema 1 (and old ``EarlyStopping(monitor=)`` spellings, in
#: the deprecation table) -> today's.
RENAMED_RECORDS = {old: s.new for old, s in old_spellings("monitor").items()}


@dataclass(frozen=True)
class History(Result):
    """Per-epoch records (``epoch, lr, train_loss`` and with ``test=`` ``accuracy, loss``
    as :func:`evaluate` gives them; ``seconds``), the method's ``config``, the epoch an
    early stop happened after (``stopped_at``), and what the method produced besides the
    weights (``extras``, e.g. LGV's ``members``; not serialised)."""

    epochs: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    stopped_at: int | None = None
    extras: dict = field(default_factory=dict, metadata={"serialize": False})
    schema: ClassVar[int] = 2  # 2: RENAMED_RECORDS

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        data["epochs"] = [{RENAMED_RECORDS.get(k, k): v for k, v in record.items()}
                          for record in data.get("epochs", [])]
        return data

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


def _callbacks(callbacks: Iterable) -> list:
    """``callbacks`` as a list, each a Callback object or a function."""
    callbacks = list(callbacks)
    for cb in callbacks:
        if not (callable(cb) or hasattr(cb, "on_epoch_end")):
            raise ValueError(f"callbacks: expected Callback objects or functions, got {cb!r}")
    return callbacks


def _frozen_batchnorms(model: nn.Module, params: list) -> list[nn.Module]:
    """The affine BatchNorms of ``model`` none of whose parameters are trained."""
    trained = {id(p) for p in params}
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.affine and not any(id(p) in trained for p in m.parameters())]


def _epoch(model: nn.Module, method, opt, bar, x, y, epoch: int, step: int, *,
           lr: tuple) -> tuple[float, int]:
    """One epoch over the batches of ``bar`` (index tensors into ``x``, ``y``): the
    scheduled learning rate, the method's step; the mean training loss and the step count
    after it."""
    schedule, total, milestones, base_lrs = lr
    device, dtype = model_device(model), model_dtype(model)
    loss_sum, seen = 0.0, 0
    for i, (idx,) in enumerate(bar):
        xb, yb = x[idx].to(device, dtype), y[idx].to(device)
        factor = _lr_factor(schedule, step / total, milestones)
        for group, base in zip(opt.param_groups, base_lrs, strict=True):
            group["lr"] = base * factor

        def closure(xb=xb, yb=yb):
            opt.zero_grad(set_to_none=True)
            loss = method.loss(model, xb, yb)
            loss.backward()
            return loss

        if step == 0:  # the first step says whether the data fit the model
            loss = run_model(model, xb, "model", lambda _: method.step(model, opt, closure))
        else:
            loss = method.step(model, opt, closure)
        method.on_step_end(model, epoch, i)
        loss_sum += float(loss.detach()) * len(idx)
        seen += len(idx)
        step += 1
    return loss_sum / seen, step


def fit(model: nn.Module, train, *, method: str | TrainingMethod = "sgd", epochs: int = 3,
        lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 5e-4,
        optimizer: OptimizerFactory | None = None, batch_size: int = 128,
        schedule: str | None = None, milestones: Sequence[float] = (0.5, 0.75), seed: int = 0,
        test=None, callbacks: Iterable = (), params: Iterable[nn.Parameter] | None = None,
        show_progress: bool | None = None, desc: str = "train", **method_options) -> History:
    """Train ``model`` in place with a training method and return its :class:`History`.

    Args:
        train: an ``ImageDataset``, ``(x, y)`` tensors or a torch ``Dataset``.
        method: a registered name (:func:`list_training_methods`) with its options as extra
            keywords (``fit(m, data, method="sam", rho=0.1)``), or a method instance.
        optimizer: a factory ``params -> Optimizer``; default SGD with ``lr``, ``momentum``
            and ``weight_decay``. Schedules scale each group's initial learning rate.
        schedule: ``"cosine"`` (per step, to zero), ``"step"`` (×0.1 at each ``milestones``
            fraction of training) or ``"constant"``; default the method's own, else cosine.
        seed: seeds the shuffling and any randomness of the method.
        test: evaluated after every epoch (``accuracy``, ``loss``), e.g. for
            :class:`~transferability.training.EarlyStopping`.
        callbacks: called after every epoch (:mod:`.callbacks`); one returning true stops.
        params: the parameters to optimise (default: all with ``requires_grad``), for
            freeze levels and linear probes. A BatchNorm whose affine parameters are not
            trained runs in eval mode, so its running statistics stay frozen too (Chen et
            al. 2021's BN freezing). Every submodule's mode is restored at the end.
    """
    method = create_training_method(method, **method_options)
    check_fit_options({"epochs": epochs, "lr": lr, "momentum": momentum,
                       "weight_decay": weight_decay, "batch_size": batch_size,
                       "milestones": milestones, "seed": seed,
                       **({} if schedule is None else {"schedule": schedule})})
    schedule = schedule or method.default_schedule or "cosine"
    callbacks = _callbacks(callbacks)
    x, y = as_tensors(train, "train")
    generator = seed_everything(seed)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("params: nothing to train (no parameter requires grad)")
    opt = (optimizer or functools.partial(torch.optim.SGD, lr=lr, momentum=momentum,
                                          weight_decay=weight_decay))(params)
    base_lrs = [group["lr"] for group in opt.param_groups]
    steps_per_epoch = math.ceil(len(y) / batch_size)
    total = epochs * steps_per_epoch
    history = History(config={"method": method.config(), "schedule": schedule})
    modes = [(m, m.training) for m in model.modules()]
    frozen_bn = _frozen_batchnorms(model, params)
    method.on_train_begin(model, steps_per_epoch)
    step, stopped = 0, None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        for bn in frozen_bn:  # a frozen BatchNorm keeps its statistics frozen too
            bn.eval()
        perm = torch.randperm(len(y), generator=generator)
        bar = progress(batches(perm, batch_size=batch_size), total=steps_per_epoch,
                       desc=f"{desc} epoch {epoch}/{epochs}", enabled=show_progress)
        train_loss, step = _epoch(model, method, opt, bar, x, y, epoch, step, lr=(
            schedule, total, milestones, base_lrs))
        record = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": train_loss}
        if not math.isfinite(record["train_loss"]):
            raise ValueError(f"train: the loss became {record['train_loss']} in epoch {epoch}; "
                             "lower lr (or rho) and check the data")
        if test is not None:
            record["accuracy"], record["loss"] = evaluate(model, test)
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        stop = False
        for cb in callbacks:
            hook = getattr(cb, "on_epoch_end", cb)
            stop = bool(hook(epoch, model, record)) or stop
        if stop:
            stopped = epoch
            break
    for cb in callbacks:
        if hasattr(cb, "restore"):
            cb.restore(model)
    for m, mode in modes:
        m.training = mode
    opt.zero_grad(set_to_none=True)
    history.extras.update(method.result())
    return dataclasses.replace(history, stopped_at=stopped)
