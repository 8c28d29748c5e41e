"""Hand-written SVG charts of the HTML report: scatter, lines, heatmap, and the figure
around them with an HTML legend. Fixed geometry (a 360 × 256 view box) and the Okabe–Ito
colours, so that every study's figures look alike and read in colour-blind vision."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .text import attr, escape, finite, pct, short

__all__ = ["COLORS", "svg_scatter", "svg_lines", "svg_heatmap", "figure", "legend"]

COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
          "#000000")
_VIRIDIS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)),
            (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))



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

    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label={attr(title)}>',
             f'<text class="t" x="{W / 2}" y="16" text-anchor="middle">{escape(title)}</text>']
    for t, text in xt:
        parts.append(f'<line class="gl" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{TOP}" '
                     f'y2="{H - BOTTOM}"/><text x="{sx(t):.1f}" y="{H - BOTTOM + 14}" '
                     f'text-anchor="middle">{escape(text)}</text>')
    for t, text in yt:
        parts.append(f'<line class="gl" x1="{LEFT}" x2="{W - RIGHT}" y1="{py(t):.1f}" '
                     f'y2="{py(t):.1f}"/><text x="{LEFT - 5}" y="{py(t) + 4:.1f}" '
                     f'text-anchor="end">{escape(text)}</text>')
    parts.append(f'<path class="ax" d="M{LEFT} {TOP}V{H - BOTTOM}H{W - RIGHT}"/>'
                 f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" text-anchor="middle">'
                 f'{escape(x_label)}</text><text transform="translate(13 {(TOP + H - BOTTOM) / 2}) '
                 f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    return parts, px, py


def _fmt(value, percent: bool) -> str:
    return pct(value) if percent else f"{value:.4g}"


def svg_scatter(points: Sequence[tuple], *, title: str, x_label: str, y_label: str,
                x_percent: bool = False, y_percent: bool = False, x_log: bool = False,
                groups: Sequence[str] = ()) -> str:
    """A scatter of ``(x, y, label[, group])`` points, each labelled, with a hover title;
    points with a missing coordinate are counted in the title."""
    ok = [p for p in points if finite(p[0]) and finite(p[1]) and (not x_log or p[0] > 0)]
    if len(ok) < len(points):
        title += f" ({len(points) - len(ok)} of {len(points)} undefined)"
    parts, px, py = _chart([p[0] for p in ok], [p[1] for p in ok], title=title,
                           x_label=x_label, y_label=y_label, x_log=x_log,
                           x_percent=x_percent, y_percent=y_percent)
    for p in ok:
        color = COLORS[groups.index(p[3]) % len(COLORS)] if len(p) > 3 else COLORS[0]
        x, y = px(p[0]), py(p[1])
        anchor = "end" if x > W - 90 else "start"
        parts.append(f'<g><title>{escape(p[2])}: {escape(x_label)} '
                     f'{escape(_fmt(p[0], x_percent))}, '
                     f'{escape(y_label)} {escape(_fmt(p[1], y_percent))}</title>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}" '
                     f'fill-opacity=".8"/><text class="pl" x="{x + (6 if x < W - 90 else -6):.1f}" '
                     f'y="{y - 5:.1f}" text-anchor="{anchor}">{escape(short(p[2], 22))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str,
              x_label: str, y_label: str, y_percent: bool = False, x_log: bool = False,
              hlines: Sequence[tuple[str, float]] = (), x_axis=None) -> str:
    """Lines with markers, one per ``(name, [(x, y), ...])``, and dashed horizontal
    reference lines ``(name, y)`` (colours follow the order: series, then lines)."""
    series = [(name, [(x, y) for x, y in pts if finite(x) and finite(y)])
              for name, pts in series]
    hlines = [(name, y) for name, y in hlines if finite(y)]
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts] + [y for _, y in hlines]
    parts, px, py = _chart(xs, ys, title=title, x_label=x_label, y_label=y_label,
                           x_log=x_log, y_percent=y_percent, x_axis=x_axis)
    for k, (name, pts) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        pts = sorted(pts)
        if len(pts) > 1:
            d = "M" + "L".join(f"{px(x):.1f} {py(y):.1f}" for x, y in pts)
            parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}">'
                         f'<title>{escape(name)}: {escape(x_label)} {x:g}, {escape(y_label)} '
                         f'{escape(_fmt(y, y_percent))}</title></circle>')
    for k, (name, y) in enumerate(hlines, start=len(series)):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                     f'stroke="{COLORS[k % len(COLORS)]}" stroke-dasharray="5 4" '
                     f'stroke-width="1.5"><title>{escape(name)}: {escape(_fmt(y, y_percent))}'
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


def svg_heatmap(rows: Sequence[str], cols: Sequence[str], values, texts, tips, *,
                title: str, row_label: str, col_label: str, bold=lambda i, j: False,
                flagged: Sequence[str] = ()) -> str:
    """A heatmap of ``values[i][j]`` in [0, 1] (viridis; ``None``: grey), each cell showing
    ``texts[i][j]`` (lines split on newlines) with ``tips[i][j]`` on hover; row names in
    ``flagged`` are marked ⚠."""
    cw, ch = 66, 40
    left = 24 + 6.4 * max(len(short(r)) + (2 if r in flagged else 0) for r in rows)
    top = 40 + 4.6 * max(len(short(c)) for c in cols)
    width, height = left + cw * len(cols) + 10, top + ch * len(rows) + 8
    parts = [f'<svg class="heat" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
             f'aria-label={attr(title)} style="max-width:{width * 1.25:.0f}px;'
             f'min-width:{width * 0.85:.0f}px">',
             f'<text class="t" x="4" y="16">{escape(title)}</text>',
             f'<text x="{left + cw * len(cols) / 2:.0f}" y="32" text-anchor="middle" '
             f'fill="#555">{escape(col_label)} →</text>',
             f'<text transform="translate(12 {top + ch * len(rows) / 2:.0f}) rotate(-90)" '
             f'text-anchor="middle" fill="#555">{escape(row_label)} →</text>']
    for j, c in enumerate(cols):
        x = left + cw * j + cw / 2
        parts.append(f'<text transform="translate({x:.0f} {top - 6:.0f}) rotate(-35)">'
                     f'<title>{escape(c)}</title>{escape(short(c))}</text>')
    for i, r in enumerate(rows):
        y = top + ch * i + ch / 2 + 4
        mark = "⚠ " if r in flagged else ""
        parts.append(f'<text x="{left - 6:.0f}" y="{y:.0f}" text-anchor="end"'
                     f'{" fill=#b00020" if mark else ""}><title>{escape(r)}</title>'
                     f'{mark}{escape(short(r))}</text>')
        for j in range(len(cols)):
            v = values[i][j]
            fill = _viridis(v) if finite(v) else "#e5e7eb"
            ink = "#000" if not finite(v) or v > 0.6 else "#fff"
            weight = ' font-weight="700"' if bold(i, j) else ""
            lines = str(texts[i][j]).split("\n")
            x0, y0 = left + cw * j, top + ch * i
            parts.append(f'<g><title>{escape(tips[i][j])}</title><rect x="{x0:.0f}" '
                         f'y="{y0:.0f}" width="{cw - 2}" height="{ch - 2}" fill="{fill}"/>')
            for k, line in enumerate(lines):
                yy = y0 + ch / 2 + 4 + (k - (len(lines) - 1) / 2) * 12
                parts.append(f'<text x="{x0 + cw / 2 - 1:.0f}" y="{yy:.0f}" '
                             f'text-anchor="middle" fill="{ink}"{weight}>{escape(line)}</text>')
            parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def figure(svg: str, entries: Sequence[tuple[str, str, bool]] = (), caption: str = "") -> str:
    """A figure with an HTML legend of ``(name, colour, dashed)`` entries and a caption."""
    items = "".join(f'<span><i class="sw{" dash" if dashed else ""}" style="color:{color}">'
                    f"</i>{escape(name)}</span>" for name, color, dashed in entries)
    return (f"<figure>{svg}<figcaption>{f'<span class=legend>{items}</span>' if items else ''}"
            f"{escape(caption)}</figcaption></figure>")


def legend(names: Iterable[str], dashed: Iterable[str] = ()) -> list[tuple[str, str, bool]]:
    """Legend entries: ``names`` solid, then ``dashed``, in the charts' colour order."""
    names, dashed = list(names), list(dashed)
    return [(n, COLORS[k % len(COLORS)], k >= len(names))
            for k, n in enumerate([*names, *dashed])]

