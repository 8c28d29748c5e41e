"""Tables and result files shared by every command: text tables, CSV, JSON and figures.

Every file is written atomically (:func:`transferability._files.atomic_write`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from ._files import write_bytes
from .attacks.norms import LEVELS

__all__ = ["format_table", "format_claims", "format_radius", "write_csv", "write_json",
           "save_figure", "fmt"]


def fmt(value, digits: int = 3) -> str:
    """A compact cell: floats to ``digits`` decimals, NaN (undefined) as ``n/a``, a missing
    value as ``-``."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def format_radius(radius) -> str:
    """A radius as people write it: ``0.1`` stays ``0.1``; a radius on the 8-bit grid that
    has no short decimal (``0.01568627…``) reads ``4/255``; anything else to 4 digits.
    Accepts a number or its text (a column key's ``@eps`` suffix)."""
    value = float(radius)
    short = f"{value:g}"
    if float(short) == value:
        return short
    steps = value * LEVELS
    if steps > 0 and abs(steps - round(steps)) < 1e-9:
        return f"{round(steps)}/{LEVELS}"
    return f"{value:.4g}"


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None,
                 headers: Sequence[str] | None = None, digits: int = 3) -> str:
    """Rows of dicts as an aligned plain-text table (numbers right-aligned)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    headers = list(headers or columns)
    cells = [[fmt(r.get(c), digits) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows)
               for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def format_claims(claims: Sequence, seeds: Sequence) -> str:
    """A study's claims (:class:`~transferability.stats.Claim`), one a line, under a heading
    that says what decides them; with fewer than 3 ``seeds`` it says the run only exercises
    the code."""
    lines = ["claims (paired differences over seeds, t 95% intervals; a verdict needs 3 seeds):"]
    if len(seeds) < 3:
        lines.append(f"  ({len(seeds)} seed{'s' * (len(seeds) != 1)}: the verdicts over seeds "
                     "are inconclusive; this run exercises the code, the full study decides)")
    return "\n".join([*lines, *(f"- {c}" for c in claims)])


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows of dicts as CSV (columns = union of keys, in first-seen order)."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_bytes(path, text.getvalue().encode())


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (NumPy/torch values converted, NaN → null)."""
    return write_bytes(path, (json.dumps(_jsonable(obj), indent=2) + "\n").encode())


def save_figure(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Save a Matplotlib figure as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return write_bytes(path, buffer.getvalue())
