"""The benchmark shown: which score to trust, as text and as figures (τ per target with
its CI; mean τ against setup stability)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..baselines import BASELINES
from ..ranking import format_correlations
from ..report import format_table, write_csv
from ..studies.benchmark import STUDY, TRUTHS, BenchmarkResult, _mean
from .sections import register_section


def format_benchmark(result) -> str:
    """The study's result as text."""
    n_setups = len({s["setup"] for s in result.sources})
    parts = [f"which score to trust: {len(result.sources)} sources ({n_setups} setups × "
             f"{len(result.settings.get('seeds', []))} seeds) on {len(result.targets)} targets "
             f"({', '.join(result.targets)})",
             "tau = weighted Kendall tau vs the few-shot probe (mean and worst over "
             "targets); top1 = targets where the score picked a best source;",
             "stability = Kendall tau of the setups' ranking between seeds (Agostinelli "
             "et al. 2022); beats_baseline = share of targets where the 95% bootstrap "
             "interval of tau minus the best baseline's tau lies above 0",
             f"baselines (target-blind): {', '.join(BASELINES)}; ensemble = mean rank of "
             "the 3 scores with the best mean tau on the other targets",
             format_table(result.summary)]
    truths = ", ".join(f"{c} {_mean(t['stability'][c] for t in result.per_target):+.2f}"
                       for c in TRUTHS)
    parts.append(f"setup stability of the ground truths: {truths}")
    for t in result.per_target:
        n = len(t["rows"])
        parts += ["", f"target {t['target']}: every score vs fewshot_acc ({n} sources, 95% "
                  "bootstrap CI)", format_correlations(t["correlations"]), "",
                  f"target {t['target']}: every score vs probe_acc",
                  format_correlations(t["probe_correlations"])]
    return "\n".join(parts)


def plot_benchmark(result: BenchmarkResult, out_dir) -> list[Path]:
    """Two PNGs: every score's weighted τ per target with its CI (scores best first), and
    mean τ against setup stability."""
    from matplotlib.figure import Figure

    from ..report import save_figure

    out = Path(out_dir)
    scores = [r["score"] for r in result.summary]
    fig = Figure(figsize=(7, 1.2 + 0.32 * len(scores)), layout="constrained")
    ax = fig.add_subplot()
    width = 0.7 / len(result.per_target)
    for i, t in enumerate(result.per_target):
        rows = {c["estimator"]: c for c in t["correlations"]}
        tau = np.array([rows[s]["weighted_tau"] for s in scores], dtype=float)
        low = np.array([rows[s]["weighted_tau_low"] for s in scores], dtype=float)
        high = np.array([rows[s]["weighted_tau_high"] for s in scores], dtype=float)
        err = np.nan_to_num(np.clip([tau - low, high - tau], 0, None))
        ys = np.arange(len(scores)) - 0.35 + width * (i + 0.5)
        ax.errorbar(tau, ys, xerr=err, fmt="o", markersize=3, capsize=2, label=t["target"])
    ax.scatter([r["mean_tau"] for r in result.summary], range(len(scores)), marker="|",
               s=200, color="black", label="mean", zorder=3)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(scores)), scores, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("weighted Kendall τ vs few-shot probe (95% bootstrap CI)")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"{len(result.sources)} sources per target", fontsize=10)
    files = [save_figure(fig, out / "benchmark_tau.png")]

    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter([r["mean_tau"] for r in result.summary],
               [r["stability"] for r in result.summary], s=18)
    for r in result.summary:
        ax.annotate(r["score"], (r["mean_tau"], r["stability"]), xytext=(3, 3),
                    textcoords="offset points", fontsize=6, alpha=0.8)
    truth = _mean(t["stability"]["fewshot_acc"] for t in result.per_target)
    if math.isfinite(truth):
        ax.axhline(truth, color="grey", linestyle="--", linewidth=0.8,
                   label="the few-shot probe's own")
        ax.legend(fontsize=7)
    ax.set_xlabel("mean weighted τ over targets")
    ax.set_ylabel("setup stability (Kendall τ between seeds)")
    ax.set_title("agreement against stability", fontsize=10)
    files.append(save_figure(fig, out / "benchmark_stability.png"))
    return files


def benchmark_files(result: BenchmarkResult, out_dir) -> list[Path]:
    """The summary and the per-source rows as CSV, and the two figures."""
    out = Path(out_dir)
    return [write_csv(result.summary, out / "benchmark.csv"),
            write_csv(result.rows(), out / "benchmark_rows.csv"), *plot_benchmark(result, out)]


register_section(BenchmarkResult, STUDY.title, format=format_benchmark,
                 files=benchmark_files)
