"""Small helpers used across the library: batching, mode restoring, seeding, progress."""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._validation import check_int

__all__ = ["batches", "evaluating", "frozen", "seed_everything", "batch_seed", "progress",
           "cache_dir", "content_key"]


def batches(*tensors: torch.Tensor, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield aligned slices of ``tensors`` of at most ``batch_size`` rows, in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    n = len(tensors[0])
    for i in range(0, n, batch_size):
        yield tuple(t[i:i + batch_size] for t in tensors)


@contextlib.contextmanager
def evaluating(*models: nn.Module):
    """Put models in eval mode for the block, then restore each submodule's mode."""
    saved = [(m, m.training) for model in models for m in model.modules()]
    try:
        for m, mode in saved:  # model.eval(), without its recursion and needless writes
            if mode:
                m.training = False
        yield
    finally:
        for m, mode in saved:
            if m.training != mode:
                m.training = mode


@contextlib.contextmanager
def frozen(*models: nn.Module):
    """Turn off ``requires_grad`` on all parameters for the block, then restore the flags.

    Attacks use it so that input gradients never accumulate into parameter ``.grad``.
    """
    saved = [(p, p.requires_grad) for model in models for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def batch_seed(seed: int, batch: int | None = None) -> int:
    """The seed of batch ``batch`` (0, 1, ...) of a run over a dataset seeded with ``seed``.

    Batch 0, and a call that is no batch of a run (``None``), keep ``seed``; batch i ≥ 1
    takes child i of NumPy's ``SeedSequence(seed)`` (``SeedSequence(seed, spawn_key=(i,))``,
    as ``spawn`` makes them), one 64-bit word. Every batch thus draws its own stream, fixed
    by (seed, i) alone: whatever ran before it, in which process, or in which order.
    """
    if batch is None or check_int(batch, "batch", minimum=0) == 0:
        return seed
    state = np.random.SeedSequence(seed, spawn_key=(int(batch),))
    return int(state.generate_state(1, np.uint64)[0])


def progress(iterable=None, *, total=None, desc: str | None = None, enabled: bool | None = None,
             **kwargs):
    """A tqdm progress bar on stderr; off when ``TRANSFERABILITY_PROGRESS=0`` or not a TTY."""
    from tqdm.auto import tqdm

    if enabled is None:
        env = os.environ.get("TRANSFERABILITY_PROGRESS")
        enabled = sys.stderr.isatty() if env is None else env not in ("0", "false", "no")
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False,
                dynamic_ncols=True, **kwargs)


def cache_dir() -> Path:
    """Where models, features and converted data are cached: ``$TRANSFERABILITY_CACHE``
    or ``~/.cache/transferability``."""
    return Path(os.environ.get("TRANSFERABILITY_CACHE", Path.home() / ".cache" / "transferability"))


def content_key(obj) -> str:
    """A short stable hash of a JSON-serialisable description (cache file names)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
