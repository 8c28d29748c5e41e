"""Safe checkpoints: a ``state_dict`` plus JSON metadata, rebuilt with :func:`create_model`.

The file is written with ``torch.save`` and read back with ``weights_only=True``: tensors,
plain containers and strings only. A file holding any other pickled object is refused,
never executed.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from torch import nn

from .registry import create_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_metadata"]

_FORMAT = "transferability-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, unsafe or not in this library's format."""


def save_checkpoint(model: nn.Module, path: str | Path, *, arch: str | None = None,
                    **meta) -> Path:
    """Save ``model`` to ``path`` with JSON-serialisable metadata.

    ``arch`` (the :func:`create_model` name), ``in_channels`` and ``arch_kwargs`` default to
    what :func:`create_model` recorded in ``model.meta``; ``num_classes`` is read off the
    (possibly re-headed) model, so :func:`load_checkpoint` can rebuild it. The write is
    atomic (temp file + rename).
    """
    info = dict(getattr(model, "meta", {}) or {})
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": _FORMAT, "meta": meta_json, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def _read(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refusing to load {path}: it holds pickled objects other than "
                              f"tensors (weights_only=True). {str(exc).splitlines()[0]}") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt or not a torch file "
                              f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a transferability checkpoint (no '{_FORMAT}' header)")
    return payload


def read_metadata(path: str | Path) -> dict:
    """The metadata stored in a checkpoint, without building the model."""
    return json.loads(_read(path)["meta"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path``; its metadata is on ``model.meta``."""
    payload = _read(path)
    meta = json.loads(payload["meta"])
    kwargs = dict(meta.get("arch_kwargs", {}))
    try:
        model = create_model(meta["arch"], num_classes=meta.get("num_classes", 10),
                             in_channels=meta.get("in_channels", 1), **kwargs)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model from its metadata: {exc}"
                              ) from None
    model.meta = meta
    return model.to(map_location).eval()
