"""The base of every result type: a frozen dataclass with ``to_dict`` / ``from_dict``.

``to_dict()`` gives plain JSON-ready values plus ``"type"`` and ``"schema"`` (a version
number), so files written today can be read, or refused with a clear error, tomorrow; a
type that renames a field bumps its ``schema`` and reads older dicts through ``upgrade``.
Tensors keep their dtype (``{"dtype": ..., "data": [...]}``), NumPy arrays become lists,
nested results (also in lists) their own dicts; ``from_dict(to_dict(r))`` rebuilds ``r``.
Fields marked
``field(metadata={"serialize": False})`` (a trained head, a model) are left out.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["Result"]


def _encode(value):
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, torch.Tensor):
        return {"dtype": str(value.dtype).removeprefix("torch."), "data": value.tolist()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value, hint):
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if type(None) in typing.get_args(hint) and len(options) == 1:  # ``X | None``
        if value is None:
            return None
        hint = options[0]
    if isinstance(hint, type) and issubclass(hint, Result) and isinstance(value, Mapping):
        return hint.from_dict(value)
    if typing.get_origin(hint) is list and isinstance(value, list):  # ``list[X]``
        (item,) = typing.get_args(hint)
        return [_decode(v, item) for v in value]
    if hint is torch.Tensor and isinstance(value, Mapping):
        return torch.tensor(value["data"], dtype=getattr(torch, value["dtype"]))
    if hint is np.ndarray:
        return np.asarray(value)
    return value


class Result:
    """Mixin for the library's frozen result dataclasses (see the module docstring)."""

    schema: typing.ClassVar[int] = 1
    #: Top-level fields renamed since an older schema: old name -> today's.
    renamed: typing.ClassVar[Mapping[str, str]] = {}

    def to_dict(self) -> dict:
        out = {"type": type(self).__name__, "schema": self.schema}
        for f in dataclasses.fields(self):
            if f.metadata.get("serialize", True):
                out[f.name] = _encode(getattr(self, f.name))
        return out

    def record(self) -> dict:
        """The serialised fields as one flat row (no ``type``/``schema``), for tables."""
        data = self.to_dict()
        return {k: v for k, v in data.items() if k not in ("type", "schema")}

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        """``data`` of an older schema in today's: a type that renames its fields bumps
        ``schema`` and lists them in :attr:`renamed` (or overrides this for renames inside
        its fields, calling it first)."""
        for old, new in cls.renamed.items():
            if old in data:
                data[new] = data.pop(old)
        return data

    @classmethod
    def from_dict(cls, data: Mapping):
        if not isinstance(data, Mapping) or data.get("type") != cls.__name__:
            found = data.get("type") if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"data: expected a {cls.__name__} dict, got {found!r}")
        if not isinstance(data.get("schema"), int) or data["schema"] > cls.schema:
            raise ValueError(f"data: {cls.__name__} schema {data.get('schema')!r} is newer "
                             f"than this library's ({cls.schema}); upgrade transferability")
        if data["schema"] < cls.schema:
            data = cls.upgrade(dict(data))
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("serialize", True) and f.name in data:
                kwargs[f.name] = _decode(data[f.name], hints.get(f.name))
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"data: incomplete {cls.__name__} dict ({exc})") from None
