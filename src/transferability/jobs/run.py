"""Running a job graph: every job once, inputs first, finished jobs never again.

``run_jobs(jobs, store)`` walks the graph; a job whose row is in the store is loaded, the
others are computed — in this process, or on a Dask cluster with ``backend="dask"``
(:mod:`.dask`) — and recorded as soon as they finish, so an interrupted run loses at most
the jobs in progress and a rerun of the same command picks up there. ``store=None`` keeps
everything in memory.

``device=`` is the run's device (:mod:`transferability.devices`), given explicitly: every
job's input models are placed there (:func:`~.execute.on_device`; ``model_args`` places the models a
command loads), and a job that builds models takes it as its ``device`` argument.
Artifacts are stored device-free and come back the same way whether computed or loaded:
models on the run's device, tensors on the CPU. The device never enters a job's key.
"""

from __future__ import annotations

import logging

import torch

from ..devices import resolve_device
from ..utils import progress
from .execute import Computed, Run, describe_failure, execute, input_outputs, on_device, record
from .graph import Job, get_job_kind, walk
from .store import ResultStore

__all__ = ["run_jobs", "Run", "JobsFailed", "execute", "Computed"]

log = logging.getLogger("transferability")


class JobsFailed(RuntimeError):
    """Jobs raised; the rest of the graph finished. ``failures`` maps keys to messages."""

    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        lines = "\n".join(f"  {m}" for m in failures.values())
        super().__init__(f"{len(failures)} job(s) failed; the others finished and are "
                         f"stored:\n{lines}\nEvery input is checked before any job runs, so "
                         "a job that fails on its input is a bug in those checks: please "
                         "report it with the lines above.")
















def run_jobs(jobs, store: ResultStore | None = None, *, study: str = "",
             backend: str = "local", show_progress: bool | None = None,
             device: str | torch.device | None = None, announce: bool = True,
             **backend_options) -> Run:
    """Compute what ``jobs`` need that ``store`` does not hold yet; return every output.

    ``announce``: log how many jobs run (False for a command's small helper jobs, so that it
    says it once).

    ``device``: where every job runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``;
    None: models stay where they are and new ones start on the CPU). Jobs whose inputs
    failed are skipped; after the rest of the graph has run, :class:`JobsFailed` names
    every failure with its key and config.
    """
    device = None if device is None else resolve_device(device)
    order = walk(list(jobs))
    run = Run()
    todo = []
    for job in order:
        out = store.load(job) if store is not None else None
        if out is None:
            todo.append(job)
        else:
            run.outputs[job.key] = on_device(out, device)
            run.loaded.append(job.key)
    if todo and announce:
        log.info("  %s: %d job(s) to run, %d already in the store", study or "jobs",
                 len(todo), len(run.loaded))
        if store is not None:  # before any work: a store that cannot take the results
            from .._files import check_writable_dir
            check_writable_dir(store.artifacts, "store")
    if backend == "dask":
        from .dask import run_dask
        run_dask(todo, run, store, study, show_progress, device=device, **backend_options)
    elif backend == "local" and not backend_options:
        _run_local(todo, run, store, study, show_progress, device)
    else:
        raise ValueError(f"backend: expected 'local' (this process, no options) or 'dask', "
                         f"got {backend!r} {backend_options or ''}".rstrip())
    if run.failed:
        raise JobsFailed(run.failed)
    return run


def _run_local(todo: list[Job], run: Run, store, study: str, show_progress, device) -> None:
    bar = progress(total=len(todo), desc=study or "jobs", enabled=show_progress)
    try:
        for job in todo:
            if any(isinstance(i, Job) and i.key not in run.outputs for i in job.inputs.values()):
                run.failed[job.key] = f"{job.kind} job {job.key} ({job.label}): skipped, an " \
                    "input failed"
            else:
                try:
                    computed = execute(get_job_kind(job.kind), job.config,
                                       input_outputs(job, run.outputs), device)
                except Exception as exc:  # reported with the others at the end
                    run.failed[job.key] = describe_failure(job, exc)
                    log.error("job failed: %s", run.failed[job.key])
                else:
                    record(run, store, job, computed, study)
            bar.update(1)
            bar.set_postfix(done=len(run.computed), failed=len(run.failed), refresh=False)
    finally:
        bar.close()
