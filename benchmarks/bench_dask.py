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
    from transferability.benchmark import QUICK, benchmark_jobs

    times, values = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, options in (("local", {}), ("dask", {"workers": 2})):
            cache = Path(tmp) / backend
            final = benchmark_jobs(QUICK, cache)
            with ResultStore(cache / "results.sqlite") as store:
                start = time.perf_counter()
                run = run_jobs([final], store, backend=backend, show_progress=False,
                               **options)
                times[backend] = time.perf_counter() - start
                values[backend] = run.value(final)
                n = len(run.computed)
    ratio = times["local"] / times["dask"]
    print(f"quick benchmark graph, {n} jobs: local {times['local']:.1f}s, dask with 2 "
          f"workers {times['dask']:.1f}s -> {ratio:.2f}x "
          f"(goal >= {SPEED_UP_GOAL}x: {'met' if ratio >= SPEED_UP_GOAL else 'MISSED'})")


def main() -> None:
    _overhead()
    _speed_up()


if __name__ == "__main__":
    main()
