"""Records of the results store as CSV, JSON or Parquet (``transferability results export``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .._files import atomic_write
from ..report import write_csv, write_json
from .store import Record

__all__ = ["export_records", "FORMATS"]

FORMATS = ("csv", "json", "parquet")


def _flat(record: Record) -> dict:
    """One row: provenance columns as they are, config/result/inputs as JSON text."""
    row = record.as_dict()
    for column in ("config", "result", "inputs"):
        row[column] = json.dumps(row[column], sort_keys=True)
    return row


def export_records(records: Sequence[Record], fmt: str, path: str | Path) -> Path:
    """Write ``records`` to ``path`` as ``fmt`` (one of :data:`FORMATS`)."""
    path = Path(path)
    if fmt == "json":  # nested: config and result stay JSON objects
        return write_json([{**r.as_dict(), "current": r.current} for r in records], path)
    rows = [{**_flat(r), "current": r.current} for r in records]
    if fmt == "csv":
        return write_csv(rows, path)
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("--format parquet: needs pyarrow (pip install pyarrow)") from None
        table = pa.Table.from_pylist(rows) if rows else pa.table({})
        return atomic_write(path, lambda f: pq.write_table(table, f))
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
