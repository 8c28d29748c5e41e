"""Jobs: small pure computations keyed by what determines their result.

A :class:`Job` is a kind (a registered function), a JSON config and named inputs (other
jobs, or :class:`Given` in-memory objects such as a user's model). Its key hashes the kind,
the config, the inputs' keys and the kind's **code version**: the source of the kind's
function and of every library module it uses, followed through their imports. Editing a
module therefore invalidates exactly the jobs whose code can reach it, with no manual
version bump.

Presentation never counts: the modules that show and save results (:data:`PRESENTATION`:
the HTML report with each study's text, figures and section, the figures, text tables and
files) are left out, so editing how a result is shown reruns nothing. Job code never imports
them, so nothing has to be cut out of a job module's source.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import torch
from torch import nn

from .._registry import Registry

__all__ = ["Job", "Given", "Output", "JobKind", "job_kind", "get_job_kind", "list_job_kinds",
           "code_version", "PRESENTATION", "given", "walk"]

PACKAGE = "transferability"
_KINDS = Registry("job kind")
_VERSIONS: dict = {}  # code versions by function, computed once per process
_MACHINERY = PACKAGE + ".jobs"  # keys and storage: they never change what a job computes
#: Library modules that only show or save results (and the modules under them): never part
#: of a code version.
PRESENTATION = (PACKAGE + ".html_report", PACKAGE + ".plots", PACKAGE + ".report")


@dataclass(frozen=True)
class Output:
    """A finished job: its JSON ``value`` and its loaded ``artifact`` (a model, tensors)."""

    value: object = None
    artifact: object = None


@dataclass(frozen=True)
class JobKind:
    """A registered job function ``fn(config, inputs) -> value | Output`` (or ``fn(config,
    inputs, device)`` for a kind that builds models: it is given the run's device, or
    None); ``artifact`` is what its artifact is: ``None``, ``"tensors"`` (a dict of tensors)
    or ``"model"``; ``device`` is false for kinds that never run a model (they need no
    GPU)."""

    name: str
    fn: Callable
    artifact: str | None = None
    device: bool = True

    @property
    def builds_models(self) -> bool:
        """Whether ``fn`` takes the run's ``device`` (it builds models)."""
        return "device" in inspect.signature(self.fn).parameters

    @property
    def version(self) -> str:
        if self.fn not in _VERSIONS:
            _VERSIONS[self.fn] = code_version(self.fn)
        return _VERSIONS[self.fn]


def job_kind(name: str, *, artifact: str | None = None, device: bool = True):
    """Register ``fn(config, inputs)`` as the job kind ``name``; ``device=False`` for a kind
    that runs no model (estimators on stored features, assembling a study's tables)."""
    if artifact not in (None, "tensors", "model"):
        raise ValueError(f"artifact: expected None, 'tensors' or 'model', got {artifact!r}")

    def register(fn):
        _KINDS.register(name, JobKind(name, fn, artifact, bool(device)))
        return fn
    return register


@cache
def _load_library_kinds() -> None:
    """Importing the package registers every job kind (its zoo and its studies')."""
    import importlib
    importlib.import_module(PACKAGE)


def get_job_kind(name: str) -> JobKind:
    if name not in _KINDS:
        _load_library_kinds()
    return _KINDS.get(name, "kind")


def list_job_kinds() -> list[str]:
    _load_library_kinds()
    return _KINDS.names()


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True, eq=False)
class Given:
    """An in-memory input (a user's model, a dataset) identified by a content ``key``."""

    key: str
    value: object = field(repr=False)
    label: str = ""


def given(value, label: str = "") -> Given:
    """Wrap a model, dataset or tensors as a job input keyed by its content (weights,
    pixels and labels), so that the same object always gives the same job keys."""
    digest = hashlib.sha256()
    _fingerprint(value, digest)
    return Given(digest.hexdigest()[:24], value, label)


def _fingerprint(value, digest) -> None:
    if isinstance(value, nn.Module):
        digest.update(repr(value).encode())  # the architecture: layers, activations, p...
        for name, tensor in value.state_dict().items():
            digest.update(name.encode())
            _fingerprint(tensor, digest)
    elif isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif hasattr(value, "x") and hasattr(value, "y"):  # an ImageDataset
        digest.update(str(getattr(value, "name", "")).encode())
        digest.update(repr(getattr(value, "class_names", None)).encode())
        _fingerprint(value.x, digest)
        _fingerprint(value.y, digest)
    else:
        digest.update(json.dumps(value, sort_keys=True, default=repr).encode())


@dataclass(frozen=True, eq=False)
class Job:
    """One computation: ``kind`` applied to ``config`` and the outputs of ``inputs``."""

    kind: str
    config: Mapping = field(default_factory=dict)
    inputs: Mapping[str, Job | Given] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self):
        get_job_kind(self.kind)
        try:
            json.dumps(self.config, sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"config: a {self.kind} job's config must be JSON data "
                             f"({exc})") from None

    @cached_property
    def key(self) -> str:
        return _hash({"kind": self.kind, "config": self.config,
                      "inputs": {n: i.key for n, i in self.inputs.items()},
                      "code": get_job_kind(self.kind).version})

    def __repr__(self) -> str:
        return f"Job({self.kind} {self.label or self.key})"


def walk(jobs) -> list[Job]:
    """Every job ``jobs`` need, each once, inputs before the jobs that use them."""
    order, seen = [], set()

    def visit(job: Job):
        stack = [(job, False)]
        while stack:
            node, done = stack.pop()
            if done:
                if node.key not in seen:
                    seen.add(node.key)
                    order.append(node)
                continue
            if node.key in seen:
                continue
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(list(node.inputs.values()))
                         if isinstance(i, Job))
    for job in jobs:
        visit(job)
    return order


# ---- code versions ---------------------------------------------------------------------

def code_version(fn: Callable) -> str:
    """Hash of the code ``fn`` runs: its source, the source of the functions of its own
    module that it calls (followed), and every library module it uses, followed through
    their imports; presentation modules left out (see the module docstring)."""
    sources: list[str] = []
    modules: set[str] = set()
    _collect(fn, sources, modules, set())
    closure: set[str] = set()
    for name in modules:
        closure |= _import_closure(name)
    digest = hashlib.sha256("\n".join(sources).encode())
    for name in sorted(closure):
        digest.update(name.encode())
        digest.update(_source(name))
    return digest.hexdigest()[:16]


def _collect(fn, sources: list[str], modules: set[str], seen: set) -> None:
    if fn in seen:
        return
    seen.add(fn)
    sources.append(inspect.getsource(fn))
    names: set[str] = set()

    def scan(code):
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                scan(const)
    scan(fn.__code__)
    for name in sorted(names):
        obj = fn.__globals__.get(name)
        if isinstance(obj, types.FunctionType) and obj.__module__ == fn.__module__:
            _collect(obj, sources, modules, seen)  # a helper beside it: its code only
            continue
        module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(
            obj, "__module__", None)
        if isinstance(module, str) and module.startswith(PACKAGE + "."):
            modules.add(module)  # a library module, class or constant: the whole file


@cache
def _source(module: str) -> bytes:
    path = _path(module)
    return path.read_bytes() if path else b""


def _path(module: str) -> Path | None:
    """The source file of library module ``module``, found in the package folder (never
    through ``sys.modules``: a module imported lazily must count before its first import)."""
    root = Path(__file__).resolve().parent.parent  # the transferability package
    parts = module.split(".")[1:]
    for candidate in (root.joinpath(*parts).with_suffix(".py") if parts else None,
                      root.joinpath(*parts, "__init__.py")):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@cache
def _import_closure(module: str) -> frozenset[str]:
    """``module`` and the library modules it imports, followed transitively. Left out:
    the package's top-level ``__init__`` (it only re-exports), the job machinery
    (``transferability.jobs``: keys and storage, which never change a job's result) and
    the presentation modules (:data:`PRESENTATION`)."""
    out: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in out or name == PACKAGE or _under(name, (_MACHINERY, *PRESENTATION)) \
                or _path(name) is None:  # not a module (a name imported from one)
            continue
        out.add(name)
        parent = name.rpartition(".")[0]
        if parent != PACKAGE:  # importing a.b.c runs a.b's __init__ first
            todo.append(parent)
        todo += _imports(name)
    return frozenset(out)


def _under(name: str, packages) -> bool:
    """Whether module ``name`` is one of ``packages`` or inside one."""
    return any(name == p or name.startswith(p + ".") for p in packages)


@cache
def _imports(name: str) -> tuple[str, ...]:
    """The library modules (and possible submodules) that module ``name`` imports."""
    path = _path(name)
    if path is None:
        return ()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(_source(name))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            found.append(base)
            found += [f"{base}.{a.name}" for a in node.names]  # submodules, if any
    return tuple(found)
