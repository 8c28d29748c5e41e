"""The robust-transfer study shown: its text table, figures (the accuracy–robustness
frontier, robustness by freeze level) and report section."""

from __future__ import annotations

from ..report import format_claims, format_radius, format_table
from ..studies.robust_transfer import STUDY, RobustTransferResult
from .charts import figure, legend, svg_lines, svg_scatter
from .sections import register_section
from .tables import claims, details, kv, mean_std, table
from .text import escape


def format_robust_transfer(result) -> str:
    """The study's result as text."""
    attack = result.settings.get("robust_accuracy", "worst of PGD-20 CE and margin")
    return "\n".join([
        "robust transfer: clean and robust accuracy on the target (mean ± std over seeds; "
        f"robust accuracy: {attack})",
        _table(result.summary), "",
        "CARTL ablation (robust sources, last 3 blocks)", _table(result.ablation), "",
        format_claims(result.claims, result.settings.get("seeds", []))])


def _table(rows: list[dict]) -> str:
    """``rows`` as a text table whose ``…@eps`` columns read the radius as written
    (``robust_accuracy@4/255``)."""
    columns = list(rows[0]) if rows else []
    headers = [c if "@" not in c else f"{c.split('@')[0]}@{_radius(c)}" for c in columns]
    return format_table(rows, columns, headers)


def _radius(column: str) -> str:
    """The radius of a ``…@eps`` column, as written (:func:`format_radius`)."""
    return format_radius(column.split("@")[1])


def plot_robust_transfer(result: RobustTransferResult, out_dir) -> list:
    """The accuracy–robustness frontier (one point per recipe, a colour per source method)
    and robust accuracy against the freeze level."""
    from pathlib import Path

    from matplotlib.figure import Figure

    from ..report import save_figure

    out = Path(out_dir)
    key = next(k for k in result.summary[0] if k.startswith("robust_accuracy@"))
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for source_method in dict.fromkeys(s["source_method"] for s in result.summary):
        group = [s for s in result.summary if s["source_method"] == source_method]
        ax.scatter([s["accuracy"] for s in group], [s[key] for s in group], label=source_method)
        for s in group:
            ax.annotate(s["recipe"], (s["accuracy"], s[key]), fontsize=6, alpha=0.7)
    ax.set_xlabel("clean accuracy (target)")
    ax.set_ylabel(f"robust accuracy, ε={_radius(key)}")
    ax.legend(fontsize=7)
    ax.set_title("accuracy–robustness frontier", fontsize=10)
    files = [save_figure(fig, out / "frontier.png")]

    levels = {"linear probe": 0, "last 2 blocks": 2, "last 3 blocks": 3, "full fine-tune": 5}
    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for source_method in dict.fromkeys(s["source_method"] for s in result.summary):
        points = sorted((levels[s["recipe"]], s[key]) for s in result.summary
                        if s["source_method"] == source_method and s["recipe"] in levels)
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=source_method)
    ax.set_xlabel("blocks fine-tuned (0 = linear probe, 5 = all)")
    ax.set_ylabel(f"robust accuracy, ε={_radius(key)}")
    ax.legend(fontsize=7)
    ax.set_title("robust accuracy against freeze level", fontsize=10)
    files.append(save_figure(fig, out / "robust_vs_freeze.png"))
    return files


def _html_section(sid: str, result: RobustTransferResult) -> str:
    """The study's section of the HTML report: the summary, the frontier, robustness by
    freeze level, the ablation and the claims."""
    summary, rows = result.summary, result.rows
    keys = [k for k in dict.fromkeys(k for s in summary for k in s)
            if k.startswith("robust_accuracy@")]
    key = keys[0] if keys else None
    settings = result.settings
    what = settings.get("robust_accuracy", "worst case of the attacks")
    columns = ["source_method", "recipe", ("clean acc.", mean_std("accuracy", "accuracy_std"))]
    columns += [(f"robust acc. ε = {_radius(k)}", mean_std(k, k.replace("@", "_std@")))
                for k in keys]
    parts = [f'<p class="note">Clean and robust accuracy ({escape(what)}) on the target\'s test '
             "images after transfer, mean ± std over seeds (n).</p>",
             table(summary, [*columns, "n"], id=f"{sid}-summary")]
    if key:
        eps = _radius(key)
        source_methods = list(dict.fromkeys(s["source_method"] for s in summary))
        levels = {"linear probe": 0, "last 2 blocks": 2, "last 3 blocks": 3,
                  "full fine-tune": 5}
        ladder = [(m, [(levels[s["recipe"]], s[key]) for s in summary
                       if s["source_method"] == m and s["recipe"] in levels])
                  for m in source_methods]
        parts += ["<h3>Accuracy and robustness</h3>", '<div class="grid">',
                  figure(svg_scatter([(s["accuracy"], s[key], s["recipe"], s["source_method"])
                                      for s in summary],
                                     title="accuracy–robustness frontier",
                                     x_label="clean accuracy", y_label=f"robust acc. ε={eps}",
                                     x_percent=True, y_percent=True, groups=source_methods),
                         legend(source_methods), "One point per (source method, recipe).")]
        if any(pts for _, pts in ladder):
            parts.append(figure(svg_lines(ladder, title="robust accuracy against freeze level",
                                          x_label="blocks fine-tuned (0 = probe, 5 = all)",
                                          y_label=f"robust acc. ε={eps}", y_percent=True),
                                legend(source_methods), "Per source method."))
        parts.append("</div>")
    if result.ablation:
        parts += ["<h3>CARTL ablation (robust sources, last 3 blocks)</h3>",
                  table(result.ablation, [*columns, "n"], id=f"{sid}-ablation")]
    parts += [claims(result.claims),
              details(f"per-seed rows ({len(rows)})", table(rows, id=f"{sid}-rows")),
              details("settings", kv(settings))]
    return "".join(parts)


register_section(RobustTransferResult, STUDY.title, _html_section,
                 format=format_robust_transfer, files=plot_robust_transfer)
