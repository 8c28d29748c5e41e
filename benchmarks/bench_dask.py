"""The Dask backend against the local one, in one run.

1. **Speed-up**: the quick benchmark's job graph (``transferability benchmark --quick``),
   each side from an empty store: ``--backend dask --workers 2`` (cluster start included)
   against ``--backend local``. Goal: ≥ 1.6× on 2 cores.
2. **Overhead per job** on tiny jobs (a no-op kind), the cluster already up: a chain of
   dependent jobs (submission to result, one at a time) and a batch of independent ones
   (wall time per job). Goal: ≤ 20 ms.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from transferability.jobs import Job, ResultStore, job_kind, run_jobs

SPEED_UP_GOAL, OVERHEAD_GOAL = 1.6, 0.020
CHAIN, BATCH = 50, 200


@job_kind("bench_noop")
def noop_job(config: dict, inputs: dict) -> int:
    """Nothing to compute: what is left is the backend's own cost."""
    return config["i"]


def _overhead() -> None:
    from transferability.jobs.dask import local_cluster

    with local_cluster(2) as cluster:
        address = cluster.scheduler_address
        run_jobs([Job("bench_noop", {"i": -1})], None, backend="dask", scheduler=address)
        chain = None
        for i in range(CHAIN):
            chain = Job("bench_noop", {"i": i}, {"prev": chain} if chain else {})
        start = time.perf_counter()
        run_jobs([chain], None, backend="dask", scheduler=address)
        per_chain = (time.perf_counter() - start) / CHAIN
        batch = [Job("bench_noop", {"i": 1000 + i}) for i in range(BATCH)]
        start = time.perf_counter()
        run_jobs(batch, None, backend="dask", scheduler=address)
        per_batch = (time.perf_counter() - start) / BATCH
    for what, seconds in ((f"chain of {CHAIN} dependent jobs", per_chain),
                          (f"{BATCH} independent jobs", per_batch)):
        verdict = "met" if seconds <= OVERHEAD_GOAL else "MISSED"
        print(f"dask overhead per job, {what}: {1000 * seconds:.1f} ms "
              f"(goal <= {1000 * OVERHEAD_GOAL:.0f} ms: {verdict})")


def _speed_up() -> None:
    import torch

    from transferability.studies.benchmark import QUICK, benchmark_jobs

    threads = torch.get_num_threads()
    sides = {f"local ({threads} torch threads)": ("local", {}, threads),
             "local (1 torch thread)": ("local", {}, 1),
             "dask, 2 workers of 1 thread": ("dask", {"workers": 2}, threads)}
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (side, (backend, options, n_threads)) in enumerate(sides.items()):
            cache = Path(tmp) / str(i)
            final = benchmark_jobs(QUICK, cache)
            torch.set_num_threads(n_threads)
            with ResultStore(cache / "results.sqlite") as store:
                start = time.perf_counter()
                run = run_jobs([final], store, backend=backend, show_progress=False,
                               **options)
                times[side] = time.perf_counter() - start
                n = len(run.computed)
            torch.set_num_threads(threads)
    dask = times["dask, 2 workers of 1 thread"]
    print(f"quick benchmark graph, {n} jobs, from an empty store (cluster start included):")
    for side, seconds in times.items():
        print(f"  {side:<28} {seconds:6.1f}s  speed-up of dask {seconds / dask:.2f}x")
    ratio = times[f"local ({threads} torch threads)"] / dask
    print(f"  goal >= {SPEED_UP_GOAL}x over the default local run: "
          f"{'met' if ratio >= SPEED_UP_GOAL else 'MISSED'}")


def main() -> None:
    _overhead()
    _speed_up()


if __name__ == "__main__":
    main()
