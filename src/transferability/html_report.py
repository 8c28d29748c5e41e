"""A self-contained HTML report of a results store: ``write_report(store, path)``.

One file that reads offline: the CSS and the few lines of JavaScript (sortable tables) are
inline, every figure is hand-written SVG, and nothing is fetched. The report only reads the
store's records and recomputes nothing. Each study's final record (a value that is a result
dict with a ``"type"``, which no other record takes as input) gets a section, the latest
one per job kind and config; a provenance panel says what ran, where, with which code and
for how long. Names come from users, so every piece of text is escaped.

Section ids: ``study-<first 12 characters of the record's key>`` for a study and
``provenance`` for the panel (``provenance-<key12>`` for a study's part of it); a table of
a study is ``<section id>-<name>`` (``-ranks``, ``-scores``, ``-correlations``, ...).
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ._files import write_bytes
from .jobs.graph import get_job_kind, list_job_kinds
from .jobs.store import Record, ResultStore
from .stats import Claim
from .studies import list_studies, study_of_result

__all__ = ["write_report", "render_report", "section_id"]

_LABELS = {"probe_acc": "full-data probe acc.", "fewshot_acc": "few-shot probe acc.",
           "fewshot_std": "few-shot std", "neg_affine_loss": "−affine-fit loss",
           "model_fit": "model fit (−affine loss)",
           "adv_reference_to_source": "adv. transfer reference → source",
           "adv_source_to_reference": "adv. transfer source → reference",
           "test_acc": "test acc.", "white_box": "white-box success",
           "transfer": "transfer success", "clean_acc": "clean acc.", "lam": "λ (penalty)",
           "a_to_b": "transfer a → b", "b_to_a": "transfer b → a", "acc_a": "clean acc. a",
           "acc_b": "clean acc. b", "rho": "ρ", "pairs": "pairs (both correct)",
           "sharpness": "sharpness (Hessian trace)", "n": "n (seeds)"}
# columns holding fractions shown as percentages (accuracies, success rates, their stds)
_PERCENT = re.compile(r"(^|_)(acc|accuracy|std|transfer|white_box|rate)(@|_|$)|_to_")
_SECONDS = re.compile(r"(^|_)(seconds|secs|duration)$")
_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
           "#000000")
_VIRIDIS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)),
            (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))


# ---- text and numbers -------------------------------------------------------------------

def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _label(column: str) -> str:
    return _LABELS.get(column, str(column).replace("_", " "))


def _pct(value, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%" if _finite(value) else "–"


def _num(value) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2e}" if 0 < abs(value) < 0.001 else f"{value:.3f}"


def _secs(seconds) -> str:
    if not _finite(seconds):
        return "–"
    text = f"{seconds:.2f} s" if seconds < 10 else f"{seconds:,.1f} s"
    return text + (f" ({seconds / 60:.1f} min)" if 120 <= seconds < 7200 else
                   f" ({seconds / 3600:.1f} h)" if seconds >= 7200 else "")


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def _json(value, indent: int | None = None) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, indent=indent)


def _cell(value, column: str = "") -> tuple[str, str | None]:
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
        text = _pct(value) if _PERCENT.search(str(column)) else \
            _secs(value) if _SECONDS.search(str(column)) else _num(value)
        return text, repr(value)
    if isinstance(value, dict | list):
        return _json(value), None
    return str(value), None


def _ci(row: dict, stat: str) -> tuple[str, str]:
    """A statistic with its confidence interval: ``+0.94 [+0.63, +1.00]``."""
    value = row.get(stat)
    if not _finite(value):
        return "undefined", ""

    def bound(v):
        return f"{v:+.2f}" if _finite(v) else "?"
    return (f"{value:+.2f} [{bound(row.get(stat + '_low'))}, "
            f"{bound(row.get(stat + '_high'))}]"), repr(value)


def _pm(mean: str, std: str) -> Callable[[dict], tuple[str, str]]:
    """A cell ``mean ± std`` (both fractions, shown as %), sorted by the mean."""
    def cell(row: dict) -> tuple[str, str]:
        m, s = row.get(mean), row.get(std)
        if not _finite(m):
            return "–", ""
        spread = f" ± {100 * s:.1f}" if _finite(s) and s else ""
        return f"{100 * m:.1f}{spread}%", repr(m)
    return cell


# ---- tables -----------------------------------------------------------------------------

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
            head.append((col, _label(col)))
            cells.append(lambda r, c=col: _cell(r.get(c), c))
        else:
            head.append((col[0], col[0]))
            cells.append(col[1])
    out = [f'<div class="scroll"><table{f" id={_q(id)}" if id else ""}'
           f'{" class=sortable" if sortable else ""}><thead><tr>']
    out += [f'<th scope="col" data-col="{_e(key)}">{_e(text)}</th>' for key, text in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for fn in cells:
            text, key = fn(row)
            attrs = "" if key is None else f' class="n" data-v="{_e(key)}"'
            out.append(f"<td{attrs}>{_e(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _q(value: str) -> str:
    return f'"{_e(value)}"'


def _kv(mapping: dict) -> str:
    """A two-column table of settings (values as compact JSON when not scalars)."""
    if not mapping:
        return '<p class="note">(none)</p>'
    rows = "".join(f"<tr><th scope=row>{_e(k)}</th><td>{_e(_cell(v)[0])}</td></tr>"
                   for k, v in mapping.items())
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _claims(claims) -> str:
    if not claims:
        return ""
    items = "".join(f"<li>{_e(Claim.from_dict(c) if isinstance(c, dict) else c)}</li>"
                    for c in claims)
    return f'<h3>Claims</h3><ul class="claims">{items}</ul>'


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{_e(summary)}</summary>{body}</details>"


# ---- SVG charts -------------------------------------------------------------------------

W, H, LEFT, RIGHT, TOP, BOTTOM = 360, 256, 54, 22, 36, 42


def _axis(values: Sequence[float], *, log_scale: bool = False, percent: bool = False,
          n: int = 4) -> tuple[float, float, list[tuple[float, str]]]:
    """``(lo, hi, [(position, label)])`` of a nice axis over ``values`` (positions are
    log10 of the values when ``log_scale``)."""
    if log_scale:
        values = [math.log10(v) for v in values if v > 0] or [0.0]
        a, b = math.floor(min(values)), math.ceil(max(values))
        b = max(b, a + 1)
        step = max(1, math.ceil((b - a) / n))
        return a, b, [(t, f"{10.0 ** t:g}") for t in range(a, b + 1, step)]
    values = list(values) or [0.0]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / n
    step = 10.0 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw * (1 - 1e-9))
    if all(float(v).is_integer() for v in values):  # epochs, counts: whole ticks
        step = max(step, 1.0)
    a, b = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    digits = max(0, -math.floor(math.log10(step * (100 if percent else 1)) + 1e-9))
    ticks = [i * step + 0.0 for i in range(a, b + 1)]
    return ticks[0], ticks[-1], [(t, f"{t * 100:.{digits}f}%" if percent else
                                  f"{t:.{digits}f}") for t in ticks]


def _chart(xs, ys, *, title: str, x_label: str, y_label: str, x_log: bool = False,
           x_percent: bool = False, y_percent: bool = False, x_axis=None):
    """An empty chart around the data: ``(svg parts, x -> px, y -> px)``."""
    x0, x1, xt = x_axis or _axis(xs, log_scale=x_log, percent=x_percent)
    y0, y1, yt = _axis(ys, percent=y_percent)

    def sx(t):
        return LEFT + (t - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def px(v):
        return sx(math.log10(v) if x_log else v)

    def py(v):
        return H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label={_q(title)}>',
             f'<text class="t" x="{W / 2}" y="16" text-anchor="middle">{_e(title)}</text>']
    for t, text in xt:
        parts.append(f'<line class="gl" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{TOP}" '
                     f'y2="{H - BOTTOM}"/><text x="{sx(t):.1f}" y="{H - BOTTOM + 14}" '
                     f'text-anchor="middle">{_e(text)}</text>')
    for t, text in yt:
        parts.append(f'<line class="gl" x1="{LEFT}" x2="{W - RIGHT}" y1="{py(t):.1f}" '
                     f'y2="{py(t):.1f}"/><text x="{LEFT - 5}" y="{py(t) + 4:.1f}" '
                     f'text-anchor="end">{_e(text)}</text>')
    parts.append(f'<path class="ax" d="M{LEFT} {TOP}V{H - BOTTOM}H{W - RIGHT}"/>'
                 f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" text-anchor="middle">'
                 f'{_e(x_label)}</text><text transform="translate(13 {(TOP + H - BOTTOM) / 2}) '
                 f'rotate(-90)" text-anchor="middle">{_e(y_label)}</text>')
    return parts, px, py


def _fmt(value, percent: bool) -> str:
    return _pct(value) if percent else f"{value:.4g}"


def svg_scatter(points: Sequence[tuple], *, title: str, x_label: str, y_label: str,
                x_percent: bool = False, y_percent: bool = False, x_log: bool = False,
                groups: Sequence[str] = ()) -> str:
    """A scatter of ``(x, y, label[, group])`` points, each labelled, with a hover title;
    points with a missing coordinate are counted in the title."""
    ok = [p for p in points if _finite(p[0]) and _finite(p[1]) and (not x_log or p[0] > 0)]
    if len(ok) < len(points):
        title += f" ({len(points) - len(ok)} of {len(points)} undefined)"
    parts, px, py = _chart([p[0] for p in ok], [p[1] for p in ok], title=title,
                           x_label=x_label, y_label=y_label, x_log=x_log,
                           x_percent=x_percent, y_percent=y_percent)
    for p in ok:
        color = _COLORS[groups.index(p[3]) % len(_COLORS)] if len(p) > 3 else _COLORS[0]
        x, y = px(p[0]), py(p[1])
        anchor = "end" if x > W - 90 else "start"
        parts.append(f'<g><title>{_e(p[2])}: {_e(x_label)} {_e(_fmt(p[0], x_percent))}, '
                     f'{_e(y_label)} {_e(_fmt(p[1], y_percent))}</title>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}" '
                     f'fill-opacity=".8"/><text class="pl" x="{x + (6 if x < W - 90 else -6):.1f}" '
                     f'y="{y - 5:.1f}" text-anchor="{anchor}">{_e(_short(p[2], 22))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str,
              x_label: str, y_label: str, y_percent: bool = False, x_log: bool = False,
              hlines: Sequence[tuple[str, float]] = (), x_axis=None) -> str:
    """Lines with markers, one per ``(name, [(x, y), ...])``, and dashed horizontal
    reference lines ``(name, y)`` (colours follow the order: series, then lines)."""
    series = [(name, [(x, y) for x, y in pts if _finite(x) and _finite(y)])
              for name, pts in series]
    hlines = [(name, y) for name, y in hlines if _finite(y)]
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts] + [y for _, y in hlines]
    parts, px, py = _chart(xs, ys, title=title, x_label=x_label, y_label=y_label,
                           x_log=x_log, y_percent=y_percent, x_axis=x_axis)
    for k, (name, pts) in enumerate(series):
        color = _COLORS[k % len(_COLORS)]
        pts = sorted(pts)
        if len(pts) > 1:
            d = "M" + "L".join(f"{px(x):.1f} {py(y):.1f}" for x, y in pts)
            parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}">'
                         f'<title>{_e(name)}: {_e(x_label)} {x:g}, {_e(y_label)} '
                         f'{_e(_fmt(y, y_percent))}</title></circle>')
    for k, (name, y) in enumerate(hlines, start=len(series)):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                     f'stroke="{_COLORS[k % len(_COLORS)]}" stroke-dasharray="5 4" '
                     f'stroke-width="1.5"><title>{_e(name)}: {_e(_fmt(y, y_percent))}'
                     f'</title></line>')
    parts.append("</svg>")
    return "".join(parts)


def _viridis(t: float) -> str:
    t = min(1.0, max(0.0, t))
    for (a, ca), (b, cb) in zip(_VIRIDIS, _VIRIDIS[1:], strict=False):
        if t <= b:
            f = (t - a) / (b - a)
            return "#" + "".join(f"{round(u + (v - u) * f):02x}" for u, v in zip(ca, cb,
                                                                               strict=True))
    return "#fde725"


def _short(name, limit: int = 18) -> str:
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1] + "…"


def svg_heatmap(rows: Sequence[str], cols: Sequence[str], values, texts, tips, *,
                title: str, row_label: str, col_label: str, bold=lambda i, j: False,
                flagged: Sequence[str] = ()) -> str:
    """A heatmap of ``values[i][j]`` in [0, 1] (viridis; ``None``: grey), each cell showing
    ``texts[i][j]`` (lines split on newlines) with ``tips[i][j]`` on hover; row names in
    ``flagged`` are marked ⚠."""
    cw, ch = 66, 40
    left = 24 + 6.4 * max(len(_short(r)) + (2 if r in flagged else 0) for r in rows)
    top = 40 + 4.6 * max(len(_short(c)) for c in cols)
    width, height = left + cw * len(cols) + 10, top + ch * len(rows) + 8
    parts = [f'<svg class="heat" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
             f'aria-label={_q(title)} style="max-width:{width * 1.25:.0f}px;'
             f'min-width:{width * 0.85:.0f}px">',
             f'<text class="t" x="4" y="16">{_e(title)}</text>',
             f'<text x="{left + cw * len(cols) / 2:.0f}" y="32" text-anchor="middle" '
             f'fill="#555">{_e(col_label)} →</text>',
             f'<text transform="translate(12 {top + ch * len(rows) / 2:.0f}) rotate(-90)" '
             f'text-anchor="middle" fill="#555">{_e(row_label)} →</text>']
    for j, c in enumerate(cols):
        x = left + cw * j + cw / 2
        parts.append(f'<text transform="translate({x:.0f} {top - 6:.0f}) rotate(-35)">'
                     f'<title>{_e(c)}</title>{_e(_short(c))}</text>')
    for i, r in enumerate(rows):
        y = top + ch * i + ch / 2 + 4
        mark = "⚠ " if r in flagged else ""
        parts.append(f'<text x="{left - 6:.0f}" y="{y:.0f}" text-anchor="end"'
                     f'{" fill=#b00020" if mark else ""}><title>{_e(r)}</title>'
                     f'{mark}{_e(_short(r))}</text>')
        for j in range(len(cols)):
            v = values[i][j]
            fill = _viridis(v) if _finite(v) else "#e5e7eb"
            ink = "#000" if not _finite(v) or v > 0.6 else "#fff"
            weight = ' font-weight="700"' if bold(i, j) else ""
            lines = str(texts[i][j]).split("\n")
            x0, y0 = left + cw * j, top + ch * i
            parts.append(f'<g><title>{_e(tips[i][j])}</title><rect x="{x0:.0f}" '
                         f'y="{y0:.0f}" width="{cw - 2}" height="{ch - 2}" fill="{fill}"/>')
            for k, line in enumerate(lines):
                yy = y0 + ch / 2 + 4 + (k - (len(lines) - 1) / 2) * 12
                parts.append(f'<text x="{x0 + cw / 2 - 1:.0f}" y="{yy:.0f}" '
                             f'text-anchor="middle" fill="{ink}"{weight}>{_e(line)}</text>')
            parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _figure(svg: str, legend: Sequence[tuple[str, str, bool]] = (), caption: str = "") -> str:
    """A figure with an HTML legend of ``(name, colour, dashed)`` and a caption."""
    items = "".join(f'<span><i class="sw{" dash" if dashed else ""}" style="color:{color}">'
                    f"</i>{_e(name)}</span>" for name, color, dashed in legend)
    return (f"<figure>{svg}<figcaption>{f'<span class=legend>{items}</span>' if items else ''}"
            f"{_e(caption)}</figcaption></figure>")


def _legend(names: Iterable[str], dashed: Iterable[str] = ()) -> list[tuple[str, str, bool]]:
    names, dashed = list(names), list(dashed)
    return [(n, _COLORS[k % len(_COLORS)], k >= len(names))
            for k, n in enumerate([*names, *dashed])]


# ---- sections by result type ------------------------------------------------------------

def _transfer_matrix(sid: str, tm: dict) -> str:
    """The transfer matrix as a heatmap (both-correct denominator, the other on hover) and
    a table of counts under both denominators."""
    surrogates, victims, n = tm["surrogates"], tm["victims"], tm["n"]
    fooled, both, fooled_both = tm["fooled"], tm["both_correct"], tm["fooled_both_correct"]
    weak = tm.get("weak_surrogates") or []

    def rate(f, t):
        return f / t if t else None

    values = [[rate(fooled_both[i][j], both[i][j]) for j in range(len(victims))]
              for i in range(len(surrogates))]
    texts = [[(f"{_pct(v, 0)}\n{fooled_both[i][j]}/{both[i][j]}" if v is not None else
               f"n/a\n0/{both[i][j]}") for j, v in enumerate(row)] for i, row in enumerate(values)]
    tips = [[f"{s} → {v}\nfooled / both correct: {fooled_both[i][j]}/{both[i][j]} "
             f"({_pct(rate(fooled_both[i][j], both[i][j]))})\nfooled / all samples: "
             f"{fooled[i][j]}/{n} ({_pct(rate(fooled[i][j], n))})"
             + ("\nwhite-box (same model)" if s == v else "")
             for j, v in enumerate(victims)] for i, s in enumerate(surrogates)]
    svg = svg_heatmap(surrogates, victims, values, texts, tips,
                      title="transfer success (fooled / both correct)",
                      row_label="surrogate (crafted on)", col_label="victim (shown to)",
                      bold=lambda i, j: surrogates[i] == victims[j], flagged=weak)
    records = [{"surrogate": s, "victim": v, "white_box": s == v,
                "fooled / both correct": (fooled_both[i][j], both[i][j]),
                "fooled / all n": (fooled[i][j], n)}
               for i, s in enumerate(surrogates) for j, v in enumerate(victims)]
    wb_all, wb_correct = tm.get("white_box_fooled") or [], tm.get("white_box_fooled_correct") or []
    clean = tm.get("clean_correct") or {}
    records += [{"surrogate": s, "victim": s, "white_box": True,
                 "fooled / both correct": (wb_correct[i], clean.get(s, 0)),
                 "fooled / all n": (wb_all[i], n)}
                for i, s in enumerate(surrogates) if s not in victims and i < len(wb_all)]

    def counts(key):
        def cell(r):
            f, t = r[key]
            return (f"{f}/{t} ({_pct(f / t)})" if t else f"{f}/0 (n/a)"), \
                (repr(f / t) if t else "")
        return key, cell

    clean_text = ", ".join(f"{name} {c}/{n} ({_pct(c / n if n else None)})"
                           for name, c in clean.items())
    note = ("Each cell: adversarial examples crafted on the surrogate (row) and shown to the "
            "victim (column); colour and number = victims fooled / samples that both models "
            f"classify correctly on clean images (the transfer protocol). Hover a cell for the "
            f"other denominator, fooled / all n = {n} samples. Bold cells are white-box (same "
            "model).")
    if weak:
        note += (f" ⚠ Weak surrogates (white-box success below 90%; their transfer rates "
                 f"understate): {', '.join(weak)}.")
    parts = [_figure(f'<div class="scroll bare">{svg}</div>', caption=note),
             '<p class="scale"><span>0%</span><i class="bar"></i><span>100%</span> transfer '
             'success</p>']
    if tm.get("attack"):
        parts.append(f'<p class="note">attack: <code>{_e(tm["attack"])}</code></p>')
    if clean_text:
        parts.append(f'<p class="note">clean accuracy on the n = {n} attacked samples: '
                     f"{_e(clean_text)}</p>")
    parts.append(_details("counts under both denominators", table(
        records, ["surrogate", "victim", "white_box", counts("fooled / both correct"),
                  counts("fooled / all n")], id=f"{sid}-matrix")))
    return "".join(parts)


def _correlations(sid: str, rows: list[dict], name: str = "correlations") -> str:
    return table(rows, [("score", lambda r: (_label(r.get("estimator", "")), None)),
                        ("weighted τ [95% CI]", lambda r: _ci(r, "weighted_tau")),
                        ("Spearman ρ [95% CI]", lambda r: _ci(r, "spearman")),
                        ("Pearson r [95% CI]", lambda r: _ci(r, "pearson")),
                        "top1",
                        ("regret", lambda r: ((f"{100 * r['regret']:.1f} pp", repr(r["regret"]))
                                              if _finite(r.get("regret")) else ("–", "")))],
                 id=f"{sid}-{name}")


def render_adv_knowledge(sid: str, v: dict) -> str:
    """The adversarial ↔ knowledge study: ranks, scores, correlations, scatters, matrix."""
    from .adversarial import MODEL_SCORES

    rows, truth = v["rows"], v.get("truth", "fewshot_acc")
    predictors = list(v.get("predictors") or [])
    adversarial = [p for p in dict.fromkeys(k for r in rows for k in r) if p in MODEL_SCORES]
    knowledge = [p for p in predictors if p not in MODEL_SCORES]
    n = len(rows)
    ranked = sorted(rows, key=lambda r: -r[truth] if _finite(r.get(truth)) else math.inf)
    ranked = [{"rank": k + 1, **r} for k, r in enumerate(ranked)]
    known = {"rank", "source", "probe_acc", truth, "fewshot_std", "affine_loss", *knowledge,
             *adversarial}
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in known]
    truth_label = _label(truth)
    parts = [f'<p class="note">n = {n} sources, ranked by {_e(truth_label)} (the ground '
             "truth) on the target's test images; click a header to sort.</p>",
             "<h3>Knowledge transfer: probes and estimators</h3>",
             table(ranked, ["rank", "source", *extra, "probe_acc", truth, "fewshot_std",
                            *knowledge], id=f"{sid}-ranks")]
    if adversarial:
        parts += ["<h3>Adversarial scores, reference (target) → source</h3>",
                  table(ranked, ["rank", "source", truth, *adversarial], id=f"{sid}-scores")]
    corr = {c.get("estimator"): c for c in v.get("correlations") or []}
    parts += [f"<h3>Agreement with {_e(truth_label)}</h3>",
              f'<p class="note">Each score against {_e(truth_label)} over n = {n} sources, '
              "with 95% bootstrap confidence intervals over sources. top1: the top-scored "
              "source has the best probe accuracy; regret: probe accuracy lost by picking it "
              "(percentage points).</p>",
              _correlations(sid, v.get("correlations") or [])]
    scatters = []
    for p in dict.fromkeys([*predictors, *adversarial]):
        rho = corr.get(p, {}).get("spearman")
        title = _label(p) + (f" (ρ = {rho:+.2f})" if _finite(rho) else "")
        scatters.append(svg_scatter([(r.get(p), r.get(truth), r.get("source", "")) for r in rows],
                                    title=title, x_label=_label(p), y_label=truth_label,
                                    y_percent=True))
    if scatters:
        parts += [f"<h3>Scores against {_e(truth_label)}</h3>",
                  f'<p class="note">One panel per score, one point per source (n = {n}); '
                  "hover a point for its values.</p>",
                  '<div class="grid">' + "".join(f"<figure>{s}</figure>" for s in scatters)
                  + "</div>"]
    if isinstance(v.get("transfer_matrix"), dict):
        parts += ["<h3>Transfer matrix: reference and transferred models</h3>",
                  _transfer_matrix(sid, v["transfer_matrix"])]
    if v.get("reverse"):
        parts += ["<h3>Reverse direction</h3>",
                  '<p class="note">Knowledge transfer between the reference and each '
                  "transferred model (model fit = −affine-fit loss of the reference's logits "
                  "from the source's) against measured adversarial transfer (fooled / both "
                  f"correct), n = {len(v['reverse'])} sources.</p>",
                  table(v["reverse"], ["source", "model_fit", "adv_reference_to_source",
                                       "adv_source_to_reference"], id=f"{sid}-reverse"),
                  _correlations(sid, v.get("reverse_correlations") or [],
                                "reverse-correlations")]
    if v.get("timings"):
        parts.append('<p class="note">study timings: ' + _e(" · ".join(
            f"{k} {_secs(s)}" for k, s in v["timings"].items())) + "</p>")
    return "".join(parts)


def render_surrogates(sid: str, v: dict) -> str:
    """The surrogate study: transfer per epoch, by kind, against ρ and sharpness; the pair."""
    per_epoch, rows, summary = v.get("per_epoch") or [], v.get("rows") or [], v["summary"]
    seeds = list(dict.fromkeys(r["seed"] for r in per_epoch))
    by_seed = [(f"seed {s}", [(r["epoch"], r["transfer"]) for r in per_epoch if r["seed"] == s])
               for s in seeds]
    lr = [(f"seed {s}", [(r["epoch"], r["lr"]) for r in per_epoch if r["seed"] == s])
          for s in seeds[:1]]
    settings = v.get("settings") or {}
    victims = "mean over the victims"
    parts = ["<h3>(a) Transfer per epoch of standard training</h3>",
             '<div class="grid">',
             _figure(svg_lines(by_seed, title="transfer success per epoch", x_label="epoch",
                               y_label="transfer success", y_percent=True),
                     _legend(n for n, _ in by_seed),
                     f"Fooled / both correct, {victims}, per seed (n = {len(seeds)} seeds)."),
             _figure(svg_lines(lr, title="learning rate per epoch", x_label="epoch",
                               y_label="learning rate"), caption="The schedule of the first seed."),
             "</div>",
             _details(f"per-epoch rows ({len(per_epoch)})",
                      table(per_epoch, id=f"{sid}-per-epoch")),
             "<h3>(b–d) Surrogates by kind</h3>",
             f'<p class="note">Transfer success = fooled / both correct, {victims}; mean ± '
             "std over seeds (n); diverged = seeds that did not train (left out of the "
             "claims).</p>",
             table(summary, ["kind", ("transfer success", _pm("transfer", "std")), "n",
                             "test_acc", "sharpness", "diverged"], id=f"{sid}-summary")]
    rhos = sorted({r["rho"] for r in rows if _finite(r.get("rho"))})
    if rhos:
        axis = (-0.5, len(rhos) - 0.5, [(k, f"{r:g}") for k, r in enumerate(rhos)])
        sam = [(f"seed {s}", [(rhos.index(r["rho"]), r["transfer"]) for r in rows
                              if r["seed"] == s and _finite(r.get("rho"))])
               for s in dict.fromkeys(r["seed"] for r in rows)]
        refs = [(s["kind"], s["transfer"]) for s in summary
                if s["kind"] in ("early stopped", "fully trained")]
        parts += ["<h3>(c, e) Transfer against the SAM radius ρ and sharpness</h3>",
                  '<div class="grid">',
                  _figure(svg_lines(sam, title="transfer success against ρ",
                                    x_label="SAM radius ρ (0.05 = SAM, larger = l-SAM)",
                                    y_label="transfer success", y_percent=True,
                                    hlines=refs, x_axis=axis),
                          _legend([n for n, _ in sam], [n for n, _ in refs]),
                          "Per seed; dashed: mean over seeds of the early-stopped and fully "
                          "trained surrogates.")]
    else:
        parts += ["<h3>(e) Transfer against sharpness</h3>", '<div class="grid">']
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    sharp = v.get("sharpness") or {}
    sharp_text = (f"Spearman(sharpness, transfer) = {sharp['spearman']:+.2f} "
                  f"[{sharp.get('low', math.nan):+.2f}, {sharp.get('high', math.nan):+.2f}] "
                  f"over n = {sharp.get('n')} surrogates that trained" if
                  _finite(sharp.get("spearman")) else "correlation undefined")
    if rows:
        parts += [_figure(svg_scatter([(r.get("sharpness"), r.get("transfer"), r.get("model", ""),
                                        r["kind"]) for r in rows],
                                      title="(e) sharpness against transfer",
                                      x_label="sharpness (Hessian trace, log)",
                                      y_label="transfer success", y_percent=True, x_log=True,
                                      groups=kinds),
                          _legend(kinds), sharp_text + ".")]
    parts.append("</div>")
    if v.get("pair"):
        parts += ["<h3>(f) A pair trained with and without the gradient-alignment penalty</h3>",
                  '<p class="note">Transfer between the two members (fooled / both correct) '
                  "and their clean test accuracy, for each penalty weight λ.</p>",
                  table(v["pair"], ["lam", "a_to_b", "b_to_a", "acc_a", "acc_b"],
                        id=f"{sid}-pair")]
    parts += [_claims(v.get("claims")),
              _details(f"per-surrogate rows ({len(rows)})", table(rows, id=f"{sid}-rows")),
              _details("settings", _kv(settings))]
    return "".join(parts)


def render_robust_transfer(sid: str, v: dict) -> str:
    """The robust-transfer study: the summary, the frontier and robustness by freeze level."""
    summary, rows = v["summary"], v.get("rows") or []
    keys = [k for k in dict.fromkeys(k for s in summary for k in s) if k.startswith("robust_acc@")]
    key = keys[0] if keys else None
    settings = v.get("settings") or {}
    what = settings.get("robust_accuracy", "worst case of the attacks")
    columns = ["source", "method", ("clean acc.", _pm("clean_acc", "clean_std"))]
    columns += [(f"robust acc. ε = {k.split('@')[1]}", _pm(k, k.replace("_acc@", "_std@")))
                for k in keys]
    parts = [f'<p class="note">Clean and robust accuracy ({_e(what)}) on the target\'s test '
             "images after transfer, mean ± std over seeds (n).</p>",
             table(summary, [*columns, "n"], id=f"{sid}-summary")]
    if key:
        eps = key.split("@")[1]
        kinds = list(dict.fromkeys(s["source"] for s in summary))
        levels = {"linear probe": 0, "last 2 blocks": 2, "last 3 blocks": 3,
                  "full fine-tune": 5}
        ladder = [(kind, [(levels[s["method"]], s[key]) for s in summary
                          if s["source"] == kind and s["method"] in levels]) for kind in kinds]
        parts += ["<h3>Accuracy and robustness</h3>", '<div class="grid">',
                  _figure(svg_scatter([(s["clean_acc"], s[key], s["method"], s["source"])
                                       for s in summary],
                                      title="accuracy–robustness frontier",
                                      x_label="clean accuracy", y_label=f"robust acc. ε={eps}",
                                      x_percent=True, y_percent=True, groups=kinds),
                          _legend(kinds), "One point per (source kind, method).")]
        if any(pts for _, pts in ladder):
            parts.append(_figure(svg_lines(ladder, title="robust accuracy against freeze level",
                                           x_label="blocks fine-tuned (0 = probe, 5 = all)",
                                           y_label=f"robust acc. ε={eps}", y_percent=True),
                                 _legend(kinds), "Per source kind."))
        parts.append("</div>")
    if v.get("ablation"):
        parts += ["<h3>CARTL ablation (robust sources, last 3 blocks)</h3>",
                  table(v["ablation"], [*columns, "n"], id=f"{sid}-ablation")]
    parts += [_claims(v.get("claims")),
              _details(f"per-seed rows ({len(rows)})", table(rows, id=f"{sid}-rows")),
              _details("settings", _kv(settings))]
    return "".join(parts)


def _rate_ci(protocol: str) -> Callable[[dict], tuple[str, str]]:
    """A success rate with its bootstrap interval, in %: ``64.0 [51.0, 76.0]%``."""
    def cell(row: dict) -> tuple[str, str]:
        r, lo, hi = (row.get(f"{k}_{protocol}") for k in ("rate", "low", "high"))
        if not _finite(r):
            return "–", ""
        return f"{100 * r:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]%", repr(r)
    return cell


def render_audit(sid: str, v: dict) -> str:
    """The transfer-attack audit: the attack-by-family table, the verdicts, the rows."""
    settings = v.get("settings") or {}
    columns = ["attack", "family", "rank", "pairs",
               ("success, both correct [95% CI]", _rate_ci("both_correct")),
               ("success, all images [95% CI]", _rate_ci("all")), "l2", "linf", "ssim"]
    parts = [f'<p class="note">Transfer pairs only (surrogate ≠ victim), {_e(settings.get("n"))} '
             "images, 8-bit quantised: " + _e(str(settings.get("quantize"))) +
             "; intervals: percentile bootstrap over images.</p>",
             table(v.get("families") or [], columns, id=f"{sid}-families"),
             _claims(v.get("claims"))]
    if v.get("targeted"):
        parts += ["<h3>Targeted (the victim predicts the target)</h3>",
                  table(v["targeted"], ["loss", "family", "pairs",
                                        ("success [95% CI]", _rate_ci("all"))],
                        id=f"{sid}-targeted")]
    rows = v.get("rows") or []
    parts += [_details(f"per (attack, surrogate, victim) rows ({len(rows)})",
                       table(rows, id=f"{sid}-rows")),
              _details("settings", _kv(settings))]
    return "".join(parts)


def _generic(sid: str, v: dict) -> str:
    """Any other result: its scalars, lists of rows as tables, lists of text as lists."""
    scalars, parts = {}, []
    for name, value in v.items():
        if name in ("type", "schema"):
            continue
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            parts += [f"<h3>{_e(_label(name))}</h3>",
                      table(value, id=f"{sid}-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}")]
        elif isinstance(value, list) and value and all(isinstance(r, str) for r in value):
            parts += [f"<h3>{_e(_label(name))}</h3><ul>",
                      *(f"<li>{_e(r)}</li>" for r in value), "</ul>"]
        elif isinstance(value, dict) and value:
            parts += [f"<h3>{_e(_label(name))}</h3>", _kv(value)]
        else:
            scalars[name] = value
    return (_kv(scalars) if scalars else "") + "".join(parts)


#: Results that are not a study's but get a section of their own (a study's come from its
#: :class:`~transferability.studies.Study`).
_RENDERERS: dict[str, Callable[[str, dict], str]] = {"TransferMatrix": _transfer_matrix}
_TITLES = {"TransferMatrix": "Transfer matrix"}


def _study_types() -> list[str]:
    """The result types of the registered studies, in registration order: each gets a
    section even when another job takes it as input."""
    return [s.result.__name__ for s in list_studies()]


# ---- the store ----------------------------------------------------------------------------

def section_id(record: Record) -> str:
    """The HTML id of a study record's section."""
    return f"study-{record.key[:12]}"


def _is_result(record: Record) -> bool:
    return isinstance(record.value, dict) and isinstance(record.value.get("type"), str)


def _studies(records: Sequence[Record]) -> list[Record]:
    """The latest final record per (kind, label, config): a result dict of a study type, or
    of any type when no other record takes it as input. By type (the main study first),
    newest first."""
    used = {k for r in records for k in r.inputs.values()}
    study_types = _study_types()
    latest: dict[tuple[str, str, str], Record] = {}
    for r in records:  # oldest first: later ones replace
        if _is_result(r) and (r.value["type"] in study_types or r.key not in used):
            latest[(r.kind, r.label, _json(r.config))] = r
    order = [*study_types, *_TITLES]
    return sorted(latest.values(), key=lambda r: (
        order.index(r.value["type"]) if r.value["type"] in order else len(order),
        r.value["type"], -r.finished, r.key))


def _closure(record: Record, by_key: dict[str, Record]) -> list[Record]:
    """The record and every record it needs, through inputs."""
    seen, todo = {}, [record.key]
    while todo:
        key = todo.pop()
        if key in seen or key not in by_key:
            continue
        seen[key] = by_key[key]
        todo += list(by_key[key].inputs.values())
    return sorted(seen.values(), key=lambda r: (r.finished, r.key))


def _seeds(config, out: list) -> list:
    if isinstance(config, dict):
        for k, v in config.items():
            if k in ("seed", "seeds"):
                out += v if isinstance(v, list) else [v]
            else:
                _seeds(v, out)
    elif isinstance(config, list):
        for v in config:
            _seeds(v, out)
    return out


def _versions(kinds: Iterable[str]) -> dict[str, str]:
    """Each known job kind's current code version."""
    known = set(list_job_kinds())
    return {k: get_job_kind(k).version for k in kinds if k in known}


def _jobs_table(records: Sequence[Record], current: dict[str, str], id: str) -> str:
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)

    def code(rs):
        versions = sorted({r.code_version for r in rs})
        state = ("current" if current.get(rs[0].kind) in versions and len(versions) == 1
                 else "kind unknown here" if rs[0].kind not in current else "code changed since")
        return f"{', '.join(versions)} ({state})"
    rows = [{"kind": k, "jobs": len(rs), "compute": sum(r.duration for r in rs),
             "code": code(rs)} for k, rs in by_kind.items()]
    rows.append({"kind": "all", "jobs": len(records),
                 "compute": sum(r.duration for r in records), "code": ""})
    return table(rows, ["kind", ("jobs", lambda r: (str(r["jobs"]), str(r["jobs"]))),
                        ("compute time (sum of durations)",
                         lambda r: (_secs(r["compute"]), repr(r["compute"]))),
                        ("code version", lambda r: (r["code"], None))], id=id)


def _environment(records: Sequence[Record]) -> dict:
    def values(attr):
        return ", ".join(sorted({str(getattr(r, attr)) for r in records})) or "–"
    start, end = min(r.started for r in records), max(r.finished for r in records)
    return {"hosts": values("host"), "transferability": values("library_version"),
            "torch": values("torch_version"),
            "ran": f"{_when(start)} → {_when(end)} (wall clock {_secs(end - start)})"}


def _provenance(studies: Sequence[Record], records: Sequence[Record], path: Path) -> str:
    current = _versions({r.kind for r in records})
    by_key = {r.key: r for r in records}
    parts = ['<section id="provenance"><h2>Provenance</h2>',
             f'<p class="note">store <code>{_e(path)}</code>: {len(records)} jobs. Compute '
             "time sums the jobs' durations (seconds); code versions hash the code each job "
             "kind runs.</p>"]
    if records:
        parts += [_kv(_environment(records)), _jobs_table(records, current, "provenance-jobs")]
    for rec in studies:
        sid = section_id(rec)
        needed = _closure(rec, by_key)
        seeds = list(dict.fromkeys(_json(s) for s in _seeds(
            [rec.config, (rec.value.get("settings") or {})], [])))
        info = {"record": rec.key, "kind": rec.kind, "label": rec.label or "–",
                "study": rec.study or "–", "seeds": ", ".join(seeds) or "–",
                "finished": _when(rec.finished), "duration of the final job": _secs(rec.duration),
                **_environment(needed)}
        parts += [f'<div class="prov" id="provenance-{sid[6:]}"><h3><a href="#{sid}">'
                  f"{_e(_title(rec))}</a></h3>", _kv(info),
                  _details("config", f"<pre>{_e(_json(rec.config, indent=2))}</pre>"),
                  f'<p class="note">jobs behind it (n = {len(needed)}):</p>',
                  _jobs_table(needed, current, f"provenance-{sid[6:]}-jobs"), "</div>"]
    parts.append("</section>")
    return "".join(parts)


def _title(rec: Record) -> str:
    kind = rec.value.get("type", "")
    study = study_of_result(kind)
    return (study.title if study else _TITLES.get(kind, kind)) + (
        f" — {rec.label}" if rec.label else "")


def _differences(studies: Sequence[Record]) -> dict[str, str]:
    """For studies sharing a kind, the config entries that tell them apart."""
    out = {}
    for kind in {r.kind for r in studies}:
        group = [r for r in studies if r.kind == kind]
        if len(group) < 2:
            continue
        keys = sorted({k for r in group for k in r.config})
        differ = [k for k in keys if len({_json(r.config.get(k)) for r in group}) > 1]
        for r in group:
            out[r.key] = ", ".join(f"{k} = {_short(_json(r.config.get(k)), 40)}"
                                   for k in differ)
    return out


def _section(rec: Record, distinct: str) -> str:
    sid, kind = section_id(rec), rec.value.get("type", "")
    study = study_of_result(kind)
    render = (study.render if study else _RENDERERS.get(kind)) or _generic
    try:
        body = render(sid, rec.value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError) \
            as exc:
        body = (f'<p class="warn">This {_e(kind)} could not be drawn ({_e(type(exc).__name__)}: '
                f"{_e(exc)}); its fields as stored:</p>" + _generic(sid, rec.value))
    sub = [f"job kind {rec.kind}", *([distinct] if distinct else []),
           f"finished {_when(rec.finished)}"]
    return (f'<section id="{sid}" class="study" data-type="{_e(kind)}"><h2>{_e(_title(rec))}'
            f'</h2><p class="meta">{_e(" · ".join(sub))} · <a href="#provenance-{sid[6:]}">'
            f"provenance</a></p>{body}</section>")


def render_report(store: ResultStore) -> str:
    """The report of ``store`` as an HTML document (see the module docstring)."""
    records = store.records()
    studies = _studies(records)
    distinct = _differences(studies)
    toc = "".join(f'<li><a href="#{section_id(r)}">{_e(_title(r))}</a>'
                  f'{f" <small>({_e(distinct[r.key])})</small>" if distinct.get(r.key) else ""}'
                  "</li>" for r in studies)
    updated = f", last job finished {_when(max(r.finished for r in records))}" if records else ""
    if studies:
        body = "".join(_section(r, distinct.get(r.key, "")) for r in studies)
    else:
        body = ('<section id="empty"><h2>No studies yet</h2><p>No studies yet: this store '
                f"holds {len(records)} jobs and no study result. Run a study with this store, "
                "then write the report again.</p></section>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>transferability report</title><link rel="icon" href="data:,">'
            f"<style>{_CSS}</style></head><body><header><h1>Transferability report</h1>"
            f'<p class="meta">{len(studies)} studies from {len(records)} jobs in '
            f"<code>{_e(store.path)}</code>{_e(updated)}</p>"
            + (f'<nav><ol>{toc}<li><a href="#provenance">Provenance</a></li></ol></nav>'
               if studies else "")
            + f"</header><main>{body}{_provenance(studies, records, store.path)}</main>"
            f"<script>{_JS}</script></body></html>\n")


def write_report(store: ResultStore | str | Path, path: str | Path) -> Path:
    """Write the HTML report of ``store`` (a :class:`ResultStore` or its file) to ``path``,
    atomically; returns the path."""
    if isinstance(store, ResultStore):
        return write_bytes(path, render_report(store).encode())
    if not Path(store).is_file():
        raise ValueError(f"store: no such results store {store}")
    with ResultStore(store) as opened:
        return write_bytes(path, render_report(opened).encode())


_CSS = """
:root{--fg:#1c2330;--muted:#5a6474;--line:#dde2ea;--soft:#f4f6f9;--link:#1f5fbf}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#fff;-webkit-text-size-adjust:100%;text-size-adjust:100%}
header,main{max-width:1180px;margin:0 auto;padding:0 24px}
h1{font-size:1.6rem;margin:20px 0 2px}h2{font-size:1.3rem;margin:0 0 2px}
h3{font-size:1.02rem;margin:22px 0 6px}
a{color:var(--link)}code{font-size:.85em;overflow-wrap:anywhere}
section{border-top:2px solid var(--line);padding:18px 0 8px}
.meta,.note,figcaption{color:var(--muted);font-size:.88rem}
.warn{color:#b00020}
nav ol{margin:6px 0 16px;padding-left:1.3em}
.scroll{overflow-x:auto;margin:6px 0 14px;border:1px solid var(--line);border-radius:6px;
max-width:100%}
.scroll.bare{border:0;margin:0}
table{border-collapse:collapse;font-size:.86rem;min-width:100%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
tbody tr:last-child>*{border-bottom:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:var(--soft);font-weight:600}
table.kv th{background:var(--soft);font-weight:500;width:1%}
table.kv td{white-space:normal;overflow-wrap:anywhere}
th.sortable{cursor:pointer;user-select:none}
th.sortable::after{content:" ↕";color:#a3acba}
th[aria-sort=ascending]::after{content:" ▲";color:var(--fg)}
th[aria-sort=descending]::after{content:" ▼";color:var(--fg)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:14px 18px;
margin:6px 0 14px}
figure{margin:6px 0 14px;min-width:0}
svg{display:block;width:100%;height:auto;max-width:100%}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
svg .t{font-weight:600;font-size:12px}svg .pl{font-size:9px;fill:#444}
svg .gl{stroke:#eceff3}svg .ax{stroke:#8d96a5;fill:none}
svg.heat text{font-size:11px}
.legend{display:block}.legend span{display:inline-block;margin-right:12px;white-space:nowrap}
.sw{display:inline-block;width:16px;height:0;margin-right:5px;vertical-align:middle;
border-top:4px solid currentColor}
.sw.dash{border-top:2px dashed currentColor}
.scale{display:flex;align-items:center;gap:6px;font-size:.8rem;color:var(--muted);margin:-6px 0 8px}
.scale .bar{display:inline-block;width:140px;height:10px;border-radius:2px;
background:linear-gradient(90deg,#440154,#3b528b,#21918c,#5ec962,#fde725)}
details{margin:6px 0 12px}summary{cursor:pointer;color:var(--link)}
pre{background:var(--soft);padding:8px;border-radius:6px;overflow-x:auto;font-size:.8rem}
.claims li{margin:4px 0}
.prov{margin-bottom:18px}
@media (max-width:600px){header,main{padding:0 12px}body{font-size:14px}
h1{font-size:1.3rem}h2{font-size:1.12rem}.grid{grid-template-columns:1fr}}
"""

_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.classList.add("sortable");
    th.tabIndex = 0;
    function key(row) {
      var c = row.cells[col];
      if (!c) return "";
      return c.hasAttribute("data-v") ? c.getAttribute("data-v") : c.textContent.trim();
    }
    function sort() {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var keys = rows.map(key);
      var numeric = keys.every(function (k) { return k === "" || isFinite(Number(k)); });
      var down = th.getAttribute("aria-sort") ? th.getAttribute("aria-sort") === "ascending"
                                              : numeric;
      var order = rows.map(function (_, i) { return i; }).sort(function (a, b) {
        var x = keys[a], y = keys[b];
        if (x === "" || y === "") return (x === "") - (y === "");
        var d = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
        return down ? -d : d;
      });
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      order.forEach(function (i) { body.appendChild(rows[i]); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
});
"""
