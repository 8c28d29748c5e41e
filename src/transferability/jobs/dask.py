"""Running a job graph on a Dask cluster (``run_jobs(..., backend="dask")``).

Without a ``scheduler`` address a ``LocalCluster`` starts with ``workers`` processes of one
thread each (torch pinned to one thread), bound to ``127.0.0.1`` with its dashboard off, and
stops when the run ends. With an address (dask-jobqueue on SLURM/PBS, Kubernetes, a
``dask scheduler`` started by hand) the run joins that cluster.

Workers compute jobs and send back their results and artifacts as bytes; this process
stays the **only writer** of the results store, so a store on one machine works with
workers on many. A job is submitted once the jobs it needs have finished and been
recorded; jobs already in the store are never submitted. A worker killed mid-job has its
job retried (Dask's ``retries``); a job that raises is reported with its key and config
while the rest of the graph goes on.

On a GPU run (``device`` cuda) the local cluster has one worker per GPU (that GPU alone
visible to it, Dask resource ``GPU=1``) besides the ``workers`` CPU-only workers (no GPU
visible). Jobs of kinds that run models ask for a ``GPU``; CPU-only kinds (estimators on
stored features, a study's assembly) run beside them on the CPU workers. A remote
cluster's GPU workers declare the resource themselves (``dask worker --resources GPU=1``).
"""

from __future__ import annotations

import json
import logging

from ..utils import progress
from .execute import Computed, Run, describe_failure, execute, record
from .graph import Given, Job, JobKind, Output, get_job_kind
from .store import ResultStore

__all__ = ["run_dask", "local_cluster"]

log = logging.getLogger("transferability")


#: Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``: glibc then returns memory to
#: the system so eagerly that torch's CPU allocations make training 1.8× slower (measured).
#: Our workers keep glibc's default; set the same in a remote cluster's Dask config.
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def worker_specs(workers: int, gpus: int = 0) -> dict[str, dict]:
    """The workers of a local cluster: ``gpus`` GPU workers (one GPU each, resource
    ``GPU=1``), then ``workers`` one-thread CPU workers (no GPU visible when there are GPU
    workers, so they never take GPU memory)."""
    from distributed import Nanny

    def spec(env: dict, resources: dict | None = None) -> dict:
        return {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1", "env": env,
                                          "resources": resources or {},
                                          "silence_logs": logging.ERROR}}
    specs = {f"gpu-{i}": spec({"CUDA_VISIBLE_DEVICES": str(i)}, {"GPU": 1})
             for i in range(gpus)}
    specs.update({f"cpu-{i}": spec({"CUDA_VISIBLE_DEVICES": ""} if gpus else {})
                  for i in range(workers)})
    return specs


def local_cluster(workers: int = 2, gpus: int = 0):
    """A local cluster on 127.0.0.1, no dashboard: ``workers`` one-thread processes, and
    with ``gpus`` one more worker per GPU (see :func:`worker_specs`)."""
    import dask
    from distributed import LocalCluster, Scheduler, SpecCluster

    with dask.config.set(WORKER_ENVIRON):
        if not gpus:
            return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                host="127.0.0.1", dashboard_address=None,
                                silence_logs=logging.ERROR)
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1",
                                                   "dashboard_address": None}}
        return SpecCluster(workers=worker_specs(workers, gpus), scheduler=scheduler,
                           silence_logs=logging.ERROR)


def _on_worker(kind: JobKind, config: dict, inputs: dict, device: str | None) -> Computed:
    """A job on a worker: one thread (torch, BLAS, OpenMP), inputs as outputs, the result
    as bytes."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    ready = {n: Output(json.loads(i.value), i.artifact) if isinstance(i, Computed) else i
             for n, i in inputs.items()}
    with threadpool_limits(limits=1):
        return execute(kind, config, ready, device)


def _client(scheduler: str | None, workers: int, gpus: int = 0):
    from distributed import Client

    if scheduler is not None:
        try:
            return Client(scheduler, timeout="30s"), None
        except OSError as exc:
            raise ValueError(f"scheduler: cannot reach a Dask scheduler at {scheduler!r} "
                             f"({exc})") from None
    cluster = local_cluster(workers, gpus)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def run_dask(todo: list[Job], run: Run, store: ResultStore | None, study: str,
             show_progress: bool | None, *, scheduler: str | None = None, workers: int = 2,
             retries: int = 2, device=None) -> None:
    """Compute ``todo`` (inputs first) on a Dask cluster, recording each job as it ends;
    on a GPU ``device``, jobs that run models go to the GPU workers (module docstring)."""
    import torch

    from .._validation import check_int

    try:
        import dask
        import distributed  # noqa: F401
    except ImportError:
        raise ValueError("backend: 'dask' needs Dask's distributed package: pip install "
                         "'transferability[dask]'") from None

    workers = check_int(workers, "workers", maximum=256)
    if not todo:
        return
    device = None if device is None else torch.device(device)
    with dask.config.set(WORKER_ENVIRON):  # for workers restarted during the run too
        _run(todo, run, store, study, show_progress, scheduler, workers, retries, device)


def placement(kind: JobKind, device) -> tuple[str | None, dict]:
    """``(device, resources)`` of a job of ``kind`` in a run on ``device``: on a GPU run, a
    kind that runs models takes a GPU worker's own GPU (``cuda``), any other one a CPU
    worker; without a device policy (``None``) models stay where they are."""
    if device is None:
        return None, {}
    if not kind.device:
        return "cpu", {}
    return ("cuda", {"GPU": 1}) if device.type == "cuda" else (str(device), {})


def _run(todo, run, store, study, show_progress, scheduler, workers, retries, device) -> None:
    import torch
    from distributed import as_completed

    gpu = device is not None and device.type == "cuda"
    gpus = torch.cuda.device_count() if gpu and scheduler is None else 0
    client, cluster = _client(scheduler, workers, gpus)
    pending = {job.key: job for job in todo}
    remote: dict[str, object] = {}  # key -> future of an input's Output / Computed
    running: dict[object, Job] = {}
    bar = progress(total=len(todo), desc=study or "jobs", enabled=show_progress)

    def input_future(node):
        if node.key not in remote:  # a given object or a stored output: sent once
            output = Output(None, node.value) if isinstance(node, Given) else \
                run.outputs[node.key]
            remote[node.key] = client.scatter(output, hash=False)
        return remote[node.key]

    def submit_ready():
        for key, job in list(pending.items()):
            needs = [i for i in job.inputs.values() if isinstance(i, Job)]
            if any(i.key in run.failed for i in needs):
                run.failed[key] = f"{job.kind} job {key} ({job.label}): skipped, an input " \
                    "failed"
                del pending[key]
                bar.update(1)
            elif all(i.key in run.outputs for i in needs):
                inputs = {n: input_future(i) for n, i in job.inputs.items()}
                kind = get_job_kind(job.kind)
                where, resources = placement(kind, device)
                future = client.submit(_on_worker, kind, dict(job.config), inputs, where,
                                       key=f"{job.kind}-{key}", pure=False, retries=retries,
                                       resources=resources or None)
                running[future] = job
                done.add(future)
                del pending[key]

    try:
        done = as_completed()
        submit_ready()
        for future in done:
            job = running.pop(future)
            try:  # an error, or a future lost with the scheduler or the connection
                computed = future.result()
            except Exception as exc:
                run.failed[job.key] = describe_failure(job, exc)
                log.error("job failed: %s", run.failed[job.key])
            else:
                record(run, store, job, computed, study)
                remote[job.key] = future  # later jobs take it from the cluster
            bar.update(1)
            bar.set_postfix(done=len(run.computed), running=len(running),
                            failed=len(run.failed), refresh=False)
            submit_ready()
        for key, job in pending.items():  # never reached: an input could not be computed
            run.failed[key] = f"{job.kind} job {key} ({job.label}): not run"
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
