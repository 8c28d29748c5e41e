"""Computing one job — in this process or on a Dask worker — and recording what it gave:
the inputs' outputs placed on the run's device (:func:`on_device`), the job's function run
in full precision (:func:`execute`), its value and artifact kept in the store and the run
(:func:`record`). :mod:`.run` (local) and :mod:`.dask` both use it."""

from __future__ import annotations

import json
import socket
import time
import traceback
from dataclasses import dataclass, field

import torch
from torch import nn

from ..devices import place, resolve_device, use_precision
from .graph import Given, Job, JobKind, Output
from .store import ResultStore, artifact_bytes, encode_value

__all__ = ["Run", "Computed", "input_outputs", "on_device", "execute", "describe_failure",
           "record"]


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

