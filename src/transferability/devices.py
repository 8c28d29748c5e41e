"""Where and at what precision models run: the device policy of commands and job runs.

* :func:`resolve_device` turns ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device`` that
  exists on this machine (``auto``: the first GPU when there is one), or refuses it;
* :func:`check_precision` accepts ``fp32|bf16|fp16`` for a device (fp16 needs a GPU);
* :func:`place` moves a model to a device (``channels_last`` for convolutions on a GPU),
  with an error naming the model when it cannot move;
* :func:`use_precision` sets the precision of forward-only passes in a block
  (:func:`current_precision` reads it; :func:`forward_precision` autocasts).

The device itself is never ambient: a command resolves it once and passes ``device=`` to
what runs models (``run_jobs``, ``model_args.load_models``, the studies' ``run``); models
are placed only by :mod:`~transferability.model_args` and the job runner
(``jobs.execute.on_device``), and a job that builds a model is given the run's device.

Mixed precision only ever applies to passes without gradients (features, predictions, the
clean pass of attacks); gradients of attacks and training stay in the model's dtype, and
estimators compute in float64 from whatever features they get.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["resolve_device", "check_precision", "place", "use_precision", "current_precision",
           "forward_precision", "PRECISIONS"]

#: Precisions of forward-only passes, and the autocast dtype of each.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

_PRECISION: contextvars.ContextVar[str] = contextvars.ContextVar(
    "transferability_precision", default="fp32")


def resolve_device(device: str | torch.device | None = "auto",
                   name: str = "device") -> torch.device:
    """The ``torch.device`` named by ``device``, checked to exist here.

    ``"auto"`` (or ``None``) is ``cuda`` when a GPU is visible, else ``mps`` when available,
    else ``cpu``; ``cuda`` is the current GPU; ``cuda:N`` must be one of the GPUs visible.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name}: expected auto, cpu, cuda, cuda:N or mps, got "
                         f"{device!r}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{name}: {device!s} asked for, but no CUDA GPU is available "
                             f"here (torch {torch.__version__}); use --device cpu or auto")
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise ValueError(f"{name}: {device!s} asked for, but this machine has {count} "
                             f"GPU(s): cuda:0..cuda:{count - 1}")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"{name}: mps asked for, but Apple's Metal backend is not "
                             "available here; use --device cpu or auto")
        return dev
    raise ValueError(f"{name}: expected auto, cpu, cuda, cuda:N or mps, got {device!r}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_precision(precision: str, device: torch.device | str = "cpu",
                    name: str = "precision") -> str:
    """``precision`` if it is ``fp32``, ``bf16`` or ``fp16`` and ``device`` can run it
    (fp16 autocast needs a GPU; bf16 runs on CPUs and GPUs)."""
    if precision not in PRECISIONS:
        raise ValueError(f"{name}: expected one of fp32, bf16, fp16, got {precision!r}")
    device = torch.device(device)
    if precision == "fp16" and device.type == "cpu":
        raise ValueError(f"{name}: fp16 needs a GPU (the device is cpu); use bf16 or fp32")
    return precision


def place(model: nn.Module, device: torch.device | str, name: str = "model") -> nn.Module:
    """Move ``model`` to ``device`` in place (convolutional models on a GPU also take the
    ``channels_last`` layout, which tensor cores run fastest); a model that cannot move is
    a ``ValueError`` naming it."""
    device = torch.device(device)
    try:
        model.to(device)
        if device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            model.to(memory_format=torch.channels_last)
    except (RuntimeError, TypeError, NotImplementedError, AssertionError) as exc:
        raise ValueError(f"{name}: cannot move {type(model).__name__} to {device} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                         "; it may hold operations for one device only") from None
    return model


@contextlib.contextmanager
def use_precision(precision: str | None, device: torch.device | str | None = None
                  ) -> Iterator[str]:
    """Run the block with ``precision`` (checked for ``device``) for forward-only passes;
    ``None`` keeps the current one."""
    precision = _PRECISION.get() if precision is None else check_precision(
        precision, device or "cpu")
    token = _PRECISION.set(precision)
    try:
        yield precision
    finally:
        _PRECISION.reset(token)


def current_precision() -> str:
    """The precision of forward-only passes in the running block (``fp32`` by default)."""
    return _PRECISION.get()


def forward_precision(device: torch.device | str,
                      precision: str | None = None) -> contextlib.AbstractContextManager:
    """Autocast for a forward pass without gradients on ``device`` at ``precision``
    (default: the current one); a no-op in fp32 or while gradients are recorded."""
    precision = current_precision() if precision is None else precision
    dtype = PRECISIONS[check_precision(precision, device)]
    if dtype is None or torch.is_grad_enabled():
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
