"""Thread limits for small linear algebra.

numpy and scipy each load an OpenBLAS, torch and scikit-learn each an OpenMP runtime;
each starts one thread per core. On a loaded machine their busy-waiting threads fight over
the cores, and an estimator on a 1,000 × 512 feature matrix can take ten times longer
than on one thread. :func:`limit_threads` runs a step under a limit chosen for its size
(:func:`threads_for`), for every one of those libraries at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from threadpoolctl import threadpool_limits

__all__ = ["PER_THREAD", "threads_for", "limit_threads"]

#: Elements of input per thread: a step on fewer runs on one thread.
PER_THREAD = 1 << 22


def threads_for(size: int) -> int:
    """Threads worth using on ``size`` input elements: one per :data:`PER_THREAD`, at
    least one, at most torch's thread count (the cores, or what ``OMP_NUM_THREADS`` or the
    caller set)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(int(size) // PER_THREAD, cpus or 1, torch.get_num_threads()))


@contextlib.contextmanager
def limit_threads(size: int) -> Iterator[int]:
    """Run the block with BLAS, OpenMP and torch limited to :func:`threads_for` ``(size)``
    threads (restored after); yields that number."""
    threads, before = threads_for(size), torch.get_num_threads()
    with threadpool_limits(limits=threads):
        torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            torch.set_num_threads(before)
