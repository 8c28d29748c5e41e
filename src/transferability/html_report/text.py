"""Text and numbers of the HTML report: escaping, percentages, seconds, dates, JSON."""

from __future__ import annotations

import html
import json
import math
import time

__all__ = ["escape", "attr", "finite", "pct", "num", "secs", "when", "to_json", "short"]


def escape(value) -> str:
    return html.escape(str(value), quote=True)


def attr(value: str) -> str:
    """``value`` escaped and quoted, for an HTML attribute."""
    return f'"{escape(value)}"'


def finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def pct(value, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%" if finite(value) else "–"


def num(value) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2e}" if 0 < abs(value) < 0.001 else f"{value:.3f}"


def secs(seconds) -> str:
    if not finite(seconds):
        return "–"
    text = f"{seconds:.2f} s" if seconds < 10 else f"{seconds:,.1f} s"
    return text + (f" ({seconds / 60:.1f} min)" if 120 <= seconds < 7200 else
                   f" ({seconds / 3600:.1f} h)" if seconds >= 7200 else "")


def when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def to_json(value, indent: int | None = None) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, indent=indent)


def short(name, limit: int = 18) -> str:
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1] + "…"
