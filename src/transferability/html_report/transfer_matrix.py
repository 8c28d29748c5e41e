"""The transfer matrix's section: a heatmap of transfer success (fooled / both correct,
the other denominator on hover) and the counts of every pair under both denominators,
all asked of the :class:`~transferability.transfer_matrix.TransferMatrix`."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..transfer_matrix import TransferMatrix
from .charts import figure, svg_heatmap
from .sections import register_section
from .tables import details, table
from .text import escape, pct

__all__ = ["transfer_matrix_section"]


def _counts(header: str, fooled: str, total: str, rate: str) -> tuple[str, Callable]:
    """A column ``fooled/total (rate)`` of :meth:`TransferMatrix.to_records` rows."""
    def counts_cell(row: dict) -> tuple[str, str]:
        f, t = row[fooled], row[total]
        return (f"{f}/{t} ({pct(row[rate])})", repr(row[rate])) if t else (f"{f}/0 (n/a)", "")
    return header, counts_cell


def transfer_matrix_section(sid: str, tm: TransferMatrix) -> str:
    """The heatmap (white-box cells bold, weak surrogates flagged ⚠), its note and scale,
    the attack, the clean accuracy of every model and a table of counts."""
    surrogates, victims, n = tm.surrogates, tm.victims, tm.n
    fooled_both, both = tm.counts("both_correct")
    rates, rates_all = tm.rates("both_correct"), tm.rates("all")
    weak = tm.weak_surrogates()
    values = [[None if math.isnan(r) else float(r) for r in row] for row in rates]
    texts = [[(f"{pct(v, 0)}\n{fooled_both[i, j]}/{both[i, j]}" if v is not None else
               f"n/a\n0/{both[i, j]}") for j, v in enumerate(row)] for i, row in enumerate(values)]
    tips = [[f"{s} → {v}\nfooled / both correct: {fooled_both[i, j]}/{both[i, j]} "
             f"({pct(rates[i, j])})\nfooled / all samples: {tm.fooled[i, j]}/{n} "
             f"({pct(rates_all[i, j])})" + ("\nwhite-box (same model)" if s == v else "")
             for j, v in enumerate(victims)] for i, s in enumerate(surrogates)]
    svg = svg_heatmap(surrogates, victims, values, texts, tips,
                      title="transfer success (fooled / both correct)",
                      row_label="surrogate (crafted on)", col_label="victim (shown to)",
                      bold=lambda i, j: surrogates[i] == victims[j], flagged=weak)
    clean_text = ", ".join(f"{name} {c}/{n} ({pct(c / n if n else None)})"
                           for name, c in tm.clean_correct.items())
    note = ("Each cell: adversarial examples crafted on the surrogate (row) and shown to the "
            "victim (column); colour and number = victims fooled / samples that both models "
            f"classify correctly on clean images (the transfer protocol). Hover a cell for the "
            f"other denominator, fooled / all n = {n} samples. Bold cells are white-box (same "
            "model).")
    if weak:
        note += (f" ⚠ Weak surrogates (white-box success below 90%; their transfer rates "
                 f"understate): {', '.join(weak)}.")
    parts = [figure(f'<div class="scroll bare">{svg}</div>', caption=note),
             '<p class="scale"><span>0%</span><i class="bar"></i><span>100%</span> transfer '
             'success</p>']
    if tm.attack:
        parts.append(f'<p class="note">attack: <code>{escape(tm.attack)}</code></p>')
    if clean_text:
        parts.append(f'<p class="note">clean accuracy on the n = {n} attacked samples: '
                     f"{escape(clean_text)}</p>")
    parts.append(details("counts under both denominators", table(
        tm.to_records(), ["surrogate", "victim", "white_box",
                          _counts("fooled / both correct", "fooled_both_correct",
                                  "both_correct", "rate_both_correct"),
                          _counts("fooled / all n", "fooled", "n", "rate_all")],
        id=f"{sid}-matrix")))
    return "".join(parts)


register_section(TransferMatrix, "Transfer matrix", transfer_matrix_section)
