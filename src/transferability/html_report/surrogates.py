"""The surrogate study shown: its text tables, figures (transfer per epoch, against ρ,
against sharpness) and report section."""

from __future__ import annotations

import math

import numpy as np

from ..report import format_claims, format_table
from ..studies.surrogates import STUDY, SurrogateStudyResult, _spread
from .charts import figure, legend, svg_lines, svg_scatter
from .sections import register_section
from .tables import claims, details, kv, mean_std, table
from .text import finite


def format_surrogates(result) -> str:
    """The study's result as text."""
    epochs = sorted({r["epoch"] for r in result.per_epoch})
    curve = [{"epoch": e, "lr": np.mean([r["lr"] for r in result.per_epoch if r["epoch"] == e]),
              **_spread([r["transfer"] for r in result.per_epoch if r["epoch"] == e])}
             for e in epochs]
    parts = ["(a) standard training: transfer success per epoch (mean ± std over seeds)",
             format_table(curve), "",
             "(b-d) surrogates by training regime (transfer = mean over victims, both-correct "
             "protocol; ± std over seeds; diverged = seeds that did not train)",
             format_table(result.summary), "",
             "(e) sharpness (Hessian trace) vs transfer: "
             + (f"Spearman {result.sharpness['spearman']:+.2f} "
                f"[{result.sharpness['low']:+.2f}, {result.sharpness['high']:+.2f}] over "
                f"{result.sharpness['n']} surrogates" if result.sharpness else "-"), "",
             "(f) a pair trained with and without the gradient-alignment penalty",
             format_table(result.pair), "",
             format_claims(result.claims, result.settings.get("seeds", []))]
    return "\n".join(parts)


def plot_surrogate_study(result: SurrogateStudyResult, out_dir) -> list:
    """Three PNGs: transfer per epoch beside the learning rate, transfer against ρ, and
    sharpness against transfer."""
    from pathlib import Path

    from matplotlib.figure import Figure

    from ..report import save_figure

    out = Path(out_dir)
    files = []
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for seed in sorted({r["seed"] for r in result.per_epoch}):
        rows = sorted((r for r in result.per_epoch if r["seed"] == seed), key=lambda r: r["epoch"])
        ax.plot([r["epoch"] for r in rows], [r["transfer"] for r in rows], marker="o",
                label=f"seed {seed}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("transfer success (both correct)")
    lr = ax.twinx()
    first = sorted((r for r in result.per_epoch if r["seed"] == result.per_epoch[0]["seed"]),
                   key=lambda r: r["epoch"])
    lr.step([r["epoch"] for r in first], [r["lr"] for r in first], color="grey", where="post",
            linestyle="--", label="learning rate")
    lr.set_ylabel("learning rate (dashed)")
    ax.legend(fontsize=7)
    ax.set_title("(a) transfer per epoch of standard training", fontsize=10)
    files.append(save_figure(fig, out / "transfer_vs_epoch.png"))

    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    rhos = sorted({r["rho"] for r in result.rows if r["rho"] is not None})
    means = [np.mean([r["transfer"] for r in result.rows if r["rho"] == rho]) for rho in rhos]
    stds = [np.std([r["transfer"] for r in result.rows if r["rho"] == rho]) for rho in rhos]
    ax.errorbar(rhos, means, yerr=stds, marker="o", capsize=3, label="SAM / l-SAM")
    for regime, style in (("early stopped", ":"), ("fully trained", "--")):
        ax.axhline(np.mean([r["transfer"] for r in result.rows if r["regime"] == regime]),
                   linestyle=style, color="grey", label=regime)
    ax.set_xscale("log")
    ax.set_xlabel("SAM radius ρ")
    ax.set_ylabel("transfer success")
    ax.legend(fontsize=7)
    ax.set_title("(c) transfer against ρ", fontsize=10)
    files.append(save_figure(fig, out / "transfer_vs_rho.png"))

    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for regime in dict.fromkeys(r["regime"] for r in result.rows):
        group = [r for r in result.rows if r["regime"] == regime]
        ax.scatter([r["sharpness"] for r in group], [r["transfer"] for r in group], label=regime,
                   s=18)
    ax.set_xscale("log")
    ax.set_xlabel("sharpness (Hessian trace)")
    ax.set_ylabel("transfer success")
    ax.legend(fontsize=6)
    ax.set_title("(e) sharpness against transfer", fontsize=10)
    files.append(save_figure(fig, out / "sharpness_vs_transfer.png"))
    return files


def _html_section(sid: str, result: SurrogateStudyResult) -> str:
    """The study's section of the HTML report: transfer per epoch, by training regime, against ρ and
    sharpness; the pair; the claims."""
    per_epoch, rows, summary = result.per_epoch, result.rows, result.summary
    seeds = list(dict.fromkeys(r["seed"] for r in per_epoch))
    by_seed = [(f"seed {s}", [(r["epoch"], r["transfer"]) for r in per_epoch if r["seed"] == s])
               for s in seeds]
    lr = [(f"seed {s}", [(r["epoch"], r["lr"]) for r in per_epoch if r["seed"] == s])
          for s in seeds[:1]]
    settings = result.settings
    victims = "mean over the victims"
    parts = ["<h3>(a) Transfer per epoch of standard training</h3>",
             '<div class="grid">',
             figure(svg_lines(by_seed, title="transfer success per epoch", x_label="epoch",
                              y_label="transfer success", y_percent=True),
                    legend(n for n, _ in by_seed),
                    f"Fooled / both correct, {victims}, per seed (n = {len(seeds)} seeds)."),
             figure(svg_lines(lr, title="learning rate per epoch", x_label="epoch",
                              y_label="learning rate"), caption="The schedule of the first seed."),
             "</div>",
             details(f"per-epoch rows ({len(per_epoch)})",
                     table(per_epoch, id=f"{sid}-per-epoch")),
             "<h3>(b–d) Surrogates by training regime</h3>",
             f'<p class="note">Transfer success = fooled / both correct, {victims}; mean ± '
             "std over seeds (n); diverged = seeds that did not train (left out of the "
             "claims).</p>",
             table(summary, ["regime", ("transfer success", mean_std("transfer", "std")), "n",
                             "accuracy", "sharpness", "diverged"], id=f"{sid}-summary")]
    rhos = sorted({r["rho"] for r in rows if finite(r.get("rho"))})
    if rhos:
        axis = (-0.5, len(rhos) - 0.5, [(k, f"{r:g}") for k, r in enumerate(rhos)])
        sam = [(f"seed {s}", [(rhos.index(r["rho"]), r["transfer"]) for r in rows
                              if r["seed"] == s and finite(r.get("rho"))])
               for s in dict.fromkeys(r["seed"] for r in rows)]
        refs = [(s["regime"], s["transfer"]) for s in summary
                if s["regime"] in ("early stopped", "fully trained")]
        parts += ["<h3>(c, e) Transfer against the SAM radius ρ and sharpness</h3>",
                  '<div class="grid">',
                  figure(svg_lines(sam, title="transfer success against ρ",
                                   x_label="SAM radius ρ (0.05 = SAM, larger = l-SAM)",
                                   y_label="transfer success", y_percent=True,
                                   hlines=refs, x_axis=axis),
                         legend([n for n, _ in sam], [n for n, _ in refs]),
                         "Per seed; dashed: mean over seeds of the early-stopped and fully "
                         "trained surrogates.")]
    else:
        parts += ["<h3>(e) Transfer against sharpness</h3>", '<div class="grid">']
    regimes = list(dict.fromkeys(r["regime"] for r in rows))
    sharp = result.sharpness
    sharp_text = (f"Spearman(sharpness, transfer) = {sharp['spearman']:+.2f} "
                  f"[{sharp.get('low', math.nan):+.2f}, {sharp.get('high', math.nan):+.2f}] "
                  f"over n = {sharp.get('n')} surrogates that trained" if
                  finite(sharp.get("spearman")) else "correlation undefined")
    if rows:
        parts += [figure(svg_scatter([(r.get("sharpness"), r.get("transfer"), r.get("model", ""),
                                       r["regime"]) for r in rows],
                                     title="(e) sharpness against transfer",
                                     x_label="sharpness (Hessian trace, log)",
                                     y_label="transfer success", y_percent=True, x_log=True,
                                     groups=regimes),
                         legend(regimes), sharp_text + ".")]
    parts.append("</div>")
    if result.pair:
        parts += ["<h3>(f) A pair trained with and without the gradient-alignment penalty</h3>",
                  '<p class="note">Transfer between the two members (fooled / both correct) '
                  "and their clean test accuracy, for each penalty weight λ.</p>",
                  table(result.pair, ["lam", "a_to_b", "b_to_a", "accuracy_a", "accuracy_b"],
                        id=f"{sid}-pair")]
    parts += [claims(result.claims),
              details(f"per-surrogate rows ({len(rows)})", table(rows, id=f"{sid}-rows")),
              details("settings", kv(settings))]
    return "".join(parts)


register_section(SurrogateStudyResult, STUDY.title, _html_section,
                 format=format_surrogates, files=plot_surrogate_study)
