"""Safe checkpoints: a ``state_dict`` plus JSON metadata, rebuilt with :func:`create_model`.

The file is written with ``torch.save`` and read back with ``weights_only=True``: tensors,
plain containers and strings only. A file holding any other pickled object is refused,
never executed.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from .._files import atomic_write
from .ensemble import Ensemble
from .registry import create_model, list_models

__all__ = ["CheckpointError", "save_checkpoint", "checkpoint_bytes", "load_checkpoint",
           "read_metadata"]

_FORMAT = "transferability-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, unsafe or not in this library's format."""


def save_checkpoint(model: nn.Module, path: str | Path, *, arch: str | None = None,
                    **meta) -> Path:
    """Save ``model`` to ``path`` with JSON-serialisable metadata.

    ``arch`` (the :func:`create_model` name), ``in_channels`` and ``arch_kwargs`` default to
    what :func:`create_model` recorded in ``model.meta``; ``num_classes`` is read off the
    (possibly re-headed) model, so :func:`load_checkpoint` can rebuild it. The write is
    atomic (a unique temporary file, fsync, rename): readers never see a partial file.
    """
    info = dict(getattr(model, "meta", {}) or {})
    if isinstance(model, Ensemble):  # a collection: one entry, rebuilt from its first member
        info = {**dict(getattr(model.members[0], "meta", {}) or {}), **info,
                "ensemble": {"members": len(model), "combine": model.combine,
                             "sample": model.sample, "seed": model.seed}}
        if hasattr(model.members[0], "num_classes"):
            info["num_classes"] = int(model.members[0].num_classes)
    info.update(meta)
    if arch is not None:
        info["arch"] = arch
    if "arch" not in info:
        raise ValueError("arch: name the architecture (a create_model name) to save a checkpoint")
    if hasattr(model, "num_classes"):
        info["num_classes"] = int(model.num_classes)  # the head may have been replaced
    try:
        meta_json = json.dumps(info, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"meta: values must be JSON-serialisable ({exc})") from None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": _FORMAT, "meta": meta_json, "state_dict": state}
    if hasattr(path, "write"):  # a file object: checkpoint_bytes, the results store
        torch.save(payload, path)
        return path
    return atomic_write(path, lambda f: torch.save(payload, f))


def checkpoint_bytes(model: nn.Module, *, arch: str | None = None, **meta) -> bytes:
    """:func:`save_checkpoint` into bytes (what a job sends back to the results store)."""
    buffer = io.BytesIO()
    save_checkpoint(model, buffer, arch=arch, **meta)
    return buffer.getvalue()


def _read(path: str | Path) -> dict:
    """The checked payload: the header, JSON metadata (a dict) and a state dict of tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt, truncated or not a "
                              "torch file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message is many lines of advice (with terminal escapes) to load unsafely;
        # keep only the name of the refused object
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found or "GLOBAL" in str(exc):
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"refusing to load {path}: it holds pickled objects{what} "
                                  "other than tensors, which are never unpickled") from None
        first = re.sub(r"[\x00-\x1f\x7f]", "", str(exc).splitlines()[0]) if str(exc) else ""
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt ({first})") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt or not a torch file "
                              f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a transferability checkpoint (no '{_FORMAT}' header)")
    try:
        meta = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its metadata is missing or not a JSON object")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: its state_dict is missing or not a mapping of names to "
                              "tensors")
    return {"meta": meta, "state_dict": state}


def read_metadata(path: str | Path) -> dict:
    """The metadata stored in a checkpoint, without building the model."""
    return _read(path)["meta"]


def _model_args(meta: dict, path: Path) -> tuple[str, dict]:
    """``create_model`` arguments from the metadata, checked for type."""
    arch, kwargs = meta.get("arch"), meta.get("arch_kwargs", {})
    args = {"num_classes": meta.get("num_classes", 10), "in_channels": meta.get("in_channels", 1)}
    if not isinstance(arch, str) or arch not in list_models():
        raise CheckpointError(f"{path}: metadata names unknown architecture {arch!r}; known: "
                              f"{', '.join(list_models())}")
    if not isinstance(kwargs, dict) or any(k in args for k in kwargs):
        raise CheckpointError(f"{path}: metadata arch_kwargs must be a mapping of options")
    for key, value in args.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointError(f"{path}: metadata {key} must be a positive integer, got "
                                  f"{value!r}")
    return arch, {**args, **kwargs}


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path``; its metadata is on ``model.meta``.

    The model is first built on the ``meta`` device (no memory) and its parameter shapes
    compared with the stored tensors, so metadata that does not match the weights (say, a
    claim of 10⁷ classes) is refused before anything is allocated. Every malformed file
    raises :class:`CheckpointError`.
    """
    path = Path(path)
    payload = _read(path)
    meta, state = payload["meta"], payload["state_dict"]
    arch, kwargs = _model_args(meta, path)
    def build() -> nn.Module:
        if "ensemble" not in meta:
            return create_model(arch, **kwargs)
        spec = meta["ensemble"]
        if not isinstance(spec, dict) or not isinstance(spec.get("members"), int) \
                or not 1 <= spec["members"] <= 10_000:
            raise ValueError(f"metadata ensemble must give 1..10000 members, got {spec!r}")
        return Ensemble([create_model(arch, **kwargs) for _ in range(spec["members"])],
                        combine=spec.get("combine", "logits"), sample=spec.get("sample"),
                        seed=spec.get("seed", 0))

    try:
        with torch.device("meta"):
            skeleton = build()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model from its metadata: "
                              f"{str(exc).splitlines()[0]}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        diff = sorted(set(expected.items()) ^ set(stored.items()))[:3]
        raise CheckpointError(f"{path}: the weights do not match the metadata ({arch}, "
                              f"{kwargs}); differing entries: {diff}")
    model = build()
    model.load_state_dict(state)
    model.meta = meta
    return model.to(map_location).eval()
