"""Callbacks of :func:`~transferability.training.fit`, called after every epoch.

A callback is any object with ``on_epoch_end(epoch, model, record) -> bool | None``
(or a plain function of the same arguments); returning ``True`` stops training.
``record`` is the epoch's metrics (``epoch, lr, train_loss`` and, with ``test=``,
``accuracy, loss``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .._deprecated import old_spellings, warn_old
from .._validation import check_int, check_positive

__all__ = ["Callback", "EarlyStopping", "Snapshot"]


class Callback:
    """Base class; override :meth:`on_epoch_end`."""

    def on_epoch_end(self, epoch: int, model: nn.Module, record: dict) -> bool | None:
        return None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` is a record name (``"accuracy"``, ``"loss"``, ``"train_loss"``; the names of
    before ``History`` schema 2 warn and are mapped by ``RENAMED_RECORDS``). ``mode`` is
    ``"max"`` or ``"min"`` (default: ``"min"`` for names containing "loss").
    With ``restore_best`` the model gets back the weights of its best epoch when training
    stops or ends. ``best_epoch`` and ``best`` say which epoch and value that was.
    """

    def __init__(self, monitor: str = "accuracy", patience: int = 3, *,
                 mode: str | None = None, min_delta: float = 0.0, restore_best: bool = True):
        old = old_spellings("monitor").get(monitor)
        if old is not None:
            warn_old(old)
            monitor = old.new
        self.monitor = monitor
        self.patience = check_int(patience, "patience")
        self.mode = mode or ("min" if "loss" in monitor else "max")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        self.min_delta = check_positive(min_delta, "min_delta", allow_zero=True)
        self.restore_best = bool(restore_best)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._best_state: dict | None = None

    def on_epoch_end(self, epoch, model, record):
        if self.monitor not in record:
            raise ValueError(f"monitor: {self.monitor!r} is not recorded; have "
                             f"{sorted(record)} (accuracy and loss need fit(test=...))")
        value = float(record[self.monitor])
        sign = 1 if self.mode == "max" else -1
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch = value, epoch
            if self.restore_best:
                self._best_state = copy.deepcopy(model.state_dict())
        stop = epoch - self.best_epoch >= self.patience
        return stop

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights (called by ``fit`` at the end)."""
        if self.restore_best and self._best_state is not None:
            model.load_state_dict(self._best_state)


class Snapshot(Callback):
    """Keep the weights every ``every`` epochs: in ``states`` (``{epoch: state_dict}``, on
    the CPU) and, with ``directory``, as checkpoints ``epoch-001.pt``, ... (atomic writes;
    the model needs the metadata of :func:`~transferability.models.create_model`)."""

    def __init__(self, every: int = 1, directory: str | Path | None = None):
        self.every = check_int(every, "every")
        self.directory = None if directory is None else Path(directory)
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def path(self, epoch: int) -> Path | None:
        return None if self.directory is None else self.directory / f"epoch-{epoch:03d}.pt"

    def on_epoch_end(self, epoch, model, record):
        if epoch % self.every:
            return None
        self.states[epoch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if self.directory is not None:
            from ..models import save_checkpoint

            save_checkpoint(model, self.path(epoch), epoch=epoch, record=record)
        return None
