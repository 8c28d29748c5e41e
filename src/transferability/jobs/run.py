"""Running a job graph: every job once, inputs first, finished jobs never again.

``run_jobs(jobs, store)`` walks the graph; a job whose row is in the store is loaded, the
others are computed — in this process, or on a Dask cluster with ``backend="dask"``
(:mod:`.dask`) — and recorded as soon as they finish, so an interrupted run loses at most
the jobs in progress and a rerun of the same command picks up there. ``store=None`` keeps
everything in memory.

``device=`` is the run's device (:mod:`transferability.devices`), given explicitly: every
job's input models are placed there (:func:`on_device`; ``model_args`` places the models a
command loads), and a job that builds models takes it as its ``device`` argument.
Artifacts are stored device-free and come back the same way whether computed or loaded:
models on the run's device, tensors on the CPU. The device never enters a job's key.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from dataclasses import dataclass, field

import torch
from torch import nn

from ..devices import place, resolve_device, use_precision
from ..utils import progress
from .graph import Given, Job, JobKind, Output, get_job_kind, walk
from .store import ResultStore, artifact_bytes, encode_value

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


@dataclass
class Run:
    """What a run did: every job's output by key, and which jobs it computed, loaded or
    could not run."""

    outputs: dict[str, Output] = field(default_factory=dict)
    computed: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, job: Job):
        return self.outputs[job.key]

    def value(self, job: Job):
        return self.outputs[job.key].value

    def artifact(self, job: Job):
        return self.outputs[job.key].artifact


@dataclass
class Computed:
    """A job computed somewhere: its value (JSON text), artifact (object and bytes) and
    when and where it ran."""

    value: str
    artifact: object
    artifact_bytes: bytes | None
    started: float
    finished: float
    host: str


def input_outputs(job: Job, outputs: dict[str, Output]) -> dict[str, Output]:
    """The outputs a job's function receives: its jobs' outputs, given objects as is."""
    return {n: Output(None, i.value) if isinstance(i, Given) else outputs[i.key]
            for n, i in job.inputs.items()}


def on_device(output: Output, device) -> Output:
    """``output`` as a job receives it on ``device``: a model artifact moved there (left
    where it is when ``device`` is ``None``), a dict of tensors on the CPU (how the store
    gives them back), anything else as it is."""
    artifact = output.artifact
    if isinstance(artifact, nn.Module):
        if device is None:
            return output
        meta = getattr(artifact, "meta", None)
        artifact = place(artifact, device, str(meta.get("name", "model"))
                         if isinstance(meta, dict) else "model")
    elif isinstance(artifact, dict) and artifact and \
            all(isinstance(v, torch.Tensor) for v in artifact.values()):
        artifact = {k: v.detach().cpu() for k, v in artifact.items()}
    else:
        return output
    return Output(output.value, artifact)


def execute(kind: JobKind, config: dict, inputs: dict[str, Output],
            device: str | None = None) -> Computed:
    """Run a job's function on its config and its inputs' outputs (here or on a worker):
    its input models are placed on ``device`` (None: where they are), a kind that builds
    models is given it, and its artifact is placed there too. Jobs compute in full
    precision: their results are stored under keys that hold no precision."""
    started = time.time()
    dev = None if device is None else resolve_device(device)
    with use_precision("fp32"):
        own = {"device": dev} if kind.builds_models else {}
        result = kind.fn(dict(config), {n: on_device(o, dev) for n, o in inputs.items()},
                         **own)
        value, artifact = (result.value, result.artifact) if isinstance(result, Output) \
            else (result, None)
        artifact = on_device(Output(None, artifact), dev).artifact
    return Computed(encode_value(value), artifact, artifact_bytes(kind.artifact, artifact),
                    started, time.time(), socket.gethostname())


def describe_failure(job: Job, exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    return (f"{job.kind} job {job.key} ({job.label or 'no label'}) with config "
            f"{json.dumps(job.config, sort_keys=True)[:300]}: {type(exc).__name__}: {exc}{at}")


def record(run: Run, store: ResultStore | None, job: Job, computed: Computed,
           study: str) -> None:
    """Keep a computed job: in the store (the only writer), and in the run's outputs with
    its value as the store gives it back, so fresh and resumed runs see the same numbers."""
    if store is not None:
        store.put(job, json.loads(computed.value), computed.artifact_bytes,
                  started=computed.started, finished=computed.finished, study=study,
                  host=computed.host)
    run.outputs[job.key] = Output(json.loads(computed.value), computed.artifact)
    run.computed.append(job.key)


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
