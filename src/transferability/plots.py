"""Matplotlib figures written to PNG (Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .report import save_figure

__all__ = ["plot_probe_accuracy", "plot_scatter_grid"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        _pyplot().close(fig)


def plot_probe_accuracy(rows: Sequence[dict], path: str | Path, *, title: str = "") -> Path:
    """Bars of full-data and few-shot linear-probe accuracy per source (±1 std)."""
    plt = _pyplot()
    names = [r["source"] for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.6))
    ax.bar([x - 0.2 for x in xs], [r["probe_acc"] for r in rows], width=0.4,
           label="full-data probe")
    ax.bar([x + 0.2 for x in xs], [r["fewshot_acc"] for r in rows], width=0.4,
           yerr=[r["fewshot_std"] for r in rows], capsize=3, label="few-shot probe")
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylabel("target test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title(title)
    return _save(fig, path)


def plot_scatter_grid(rows: Sequence[dict], scores: Sequence[str], truth: str,
                      path: str | Path, *, title: str = "") -> Path:
    """One scatter per score against the ground-truth column ``truth``, points labelled."""
    plt = _pyplot()
    n = len(scores)
    cols = min(4, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 3.0 * nrows), squeeze=False)
    for ax, score in zip(axes.flat, scores, strict=False):
        pts = [(r[score], r[truth], r["source"]) for r in rows if r.get(score) is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18)
        for xv, yv, label in pts:
            ax.annotate(label, (xv, yv), fontsize=6, alpha=0.7)
        ax.set_xlabel(score)
        ax.set_ylabel(truth)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)
