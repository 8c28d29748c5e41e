"""Tables of the HTML report: cells formatted by their column, sortable tables, settings.

A column is a key (header from the key, cell formatted by the value's kind and the key's
name: accuracies and rates as %, seconds with their unit) or ``(header, row -> (text, sort
key))``; :func:`ci_cell` and :func:`mean_std` make the common cells.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from ..stats import Claim
from .text import attr, escape, finite, num, pct, secs, to_json

__all__ = ["LABELS", "label", "cell", "ci_cell", "mean_std", "Column", "table", "kv", "claims",
           "details"]

LABELS = {"probe_acc": "full-data probe acc.", "fewshot_acc": "few-shot probe acc.",
           "fewshot_std": "few-shot std", "neg_affine_loss": "−affine-fit loss",
           "model_fit": "model fit (−affine loss)",
           "adv_reference_to_source": "adv. transfer reference → source",
           "adv_source_to_reference": "adv. transfer source → reference",
           "accuracy": "test acc.", "white_box": "white-box success",
           "transfer": "transfer success", "lam": "λ (penalty)",
           "a_to_b": "transfer a → b", "b_to_a": "transfer b → a", "accuracy_a": "clean acc. a",
           "accuracy_b": "clean acc. b", "rho": "ρ", "pairs": "pairs (both correct)",
           "sharpness": "sharpness (Hessian trace)", "n": "n (seeds)"}
# columns holding fractions shown as percentages (accuracies, success rates, their stds)
_PERCENT = re.compile(r"(^|_)(acc|accuracy|std|transfer|white_box|rate)(@|_|$)|_to_")
_SECONDS = re.compile(r"(^|_)(seconds|secs|duration)$")


def label(column: str) -> str:
    return LABELS.get(column, str(column).replace("_", " "))


def cell(value, column: str = "") -> tuple[str, str | None]:
    """A cell's text and its sort key (``None``: sort by the text; ``""``: missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–", ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), str(int(value))
    if isinstance(value, int):
        return str(value), str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return ("∞" if value > 0 else "−∞"), ("1e308" if value > 0 else "-1e308")
        text = pct(value) if _PERCENT.search(str(column)) else \
            secs(value) if _SECONDS.search(str(column)) else num(value)
        return text, repr(value)
    if isinstance(value, dict | list):
        return to_json(value), None
    return str(value), None


def ci_cell(row: dict, stat: str) -> tuple[str, str]:
    """A statistic with its confidence interval: ``+0.94 [+0.63, +1.00]``."""
    value = row.get(stat)
    if not finite(value):
        return "undefined", ""

    def bound(v):
        return f"{v:+.2f}" if finite(v) else "?"
    return (f"{value:+.2f} [{bound(row.get(stat + '_low'))}, "
            f"{bound(row.get(stat + '_high'))}]"), repr(value)


def mean_std(mean: str, std: str) -> Callable[[dict], tuple[str, str]]:
    """A cell ``mean ± std`` (both fractions, shown as %), sorted by the mean."""
    def mean_std_cell(row: dict) -> tuple[str, str]:
        m, s = row.get(mean), row.get(std)
        if not finite(m):
            return "–", ""
        spread = f" ± {100 * s:.1f}" if finite(s) and s else ""
        return f"{100 * m:.1f}{spread}%", repr(m)
    return mean_std_cell


Column = str | tuple[str, Callable[[dict], tuple[str, str | None]]]


def table(rows: Sequence[dict], columns: Sequence[Column] | None = None, *, id: str = "",
          sortable: bool = True) -> str:
    """Rows of dicts as an HTML table in a horizontally scrolling wrapper.

    A column is a key (header from the key, cell formatted by the value's kind and the
    key's name: accuracies and rates as %) or ``(header, row -> (text, sort key))``.
    Sortable tables sort by a click on a header, numerically where every key is a number.
    """
    if not rows:
        return '<p class="note">(no rows)</p>'
    if columns is None:  # text columns (names) first: the store keeps keys sorted
        keys = list(dict.fromkeys(k for r in rows for k in r))
        columns = sorted(keys, key=lambda k: any(isinstance(r.get(k), int | float)
                                                 for r in rows))
    head, cells = [], []
    for col in columns:
        if isinstance(col, str):
            head.append((col, label(col)))
            cells.append(lambda r, c=col: cell(r.get(c), c))
        else:
            head.append((col[0], col[0]))
            cells.append(col[1])
    out = [f'<div class="scroll"><table{f" id={attr(id)}" if id else ""}'
           f'{" class=sortable" if sortable else ""}><thead><tr>']
    out += [f'<th scope="col" data-col="{escape(key)}">{escape(text)}</th>'
            for key, text in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for fn in cells:
            text, key = fn(row)
            attrs = "" if key is None else f' class="n" data-v="{escape(key)}"'
            out.append(f"<td{attrs}>{escape(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def kv(mapping: dict) -> str:
    """A two-column table of settings (values as compact JSON when not scalars)."""
    if not mapping:
        return '<p class="note">(none)</p>'
    rows = "".join(f"<tr><th scope=row>{escape(k)}</th><td>{escape(cell(v)[0])}</td></tr>"
                   for k, v in mapping.items())
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def claims(items) -> str:
    """A study's claims (:class:`~transferability.stats.Claim` or text) as a list."""
    if not items:
        return ""
    lines = "".join(f"<li>{escape(Claim.from_dict(c) if isinstance(c, dict) else c)}</li>"
                    for c in items)
    return f'<h3>Claims</h3><ul class="claims">{lines}</ul>'


def details(summary: str, body: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"
