"""``transferability demo``: the whole study on bundled data, in a few minutes on a CPU.

1. **Zoo** — architectures × fonts/animals mixture sources (``configs/demo.yaml``), and a
   reference model trained on the target task (``mnist``).
2. **Knowledge transfer** — each source's estimator scores (LEEP, NCE, H-score, LogME,
   TransRate) and its few-shot and full-data linear probe on the target (the few-shot
   probe is the discriminative ground truth; DESIGN.md), with each estimator's agreement.
3. **Transfer matrix** — PGD examples crafted on each transferred model (source + probe
   head) and on the reference, shown to all of them, with both denominators.

Writes ``results.json``, ``results.csv``, ``transfer_matrix.*`` and PNG plots.
"""

from __future__ import annotations

import time
from pathlib import Path

from .data import load_dataset, per_class
from .plots import plot_probe_accuracy, plot_scatter_grid
from .ranking import format_correlations, rank_sources
from .report import format_table, write_csv, write_json
from .transfer import probe_features, with_head
from .transfer_matrix import transfer_matrix
from .zoo import build_zoo, load_spec

__all__ = ["demo_spec", "reference_spec", "run_demo"]

TARGET = "mnist"
QUICK_MODELS = ("cnn-k0", "cnn-k5", "cnn-k10", "mlp-k5")


def demo_spec(quick: bool = False) -> dict:
    """The bundled demo zoo spec; ``quick`` keeps 4 models on 100 samples/class, 1 epoch."""
    models = []
    for e in load_spec("demo"):
        if quick and e.name not in QUICK_MODELS:
            continue
        data = dict(e.data) | ({"n_per_class": 100} if quick else {})
        train = dict(e.train) | ({"epochs": 1} if quick else {})
        models.append({"name": e.name, "arch": e.arch, "data": data, "train": train})
    return {"models": models}


def reference_spec(quick: bool = False) -> dict:
    """A cnn trained on the target task: the paper's reference model for α^{T→S}."""
    data = {"dataset": TARGET} | ({"n_per_class": 100} if quick else {})
    return {"train": {"epochs": 2 if quick else 3, "lr": 0.05, "seed": 0},
            "models": [{"name": f"reference-{TARGET}", "arch": "cnn", "data": data}]}


class _Steps:
    """Numbered progress lines and per-section timings."""

    def __init__(self, total: int, log):
        self.total, self.log, self.i, self.timings = total, log, 0, {}

    def __call__(self, key: str, text: str):
        self.i += 1
        self.log(f"[{self.i}/{self.total}] {text} ...")
        self.key, self.start = key, time.perf_counter()

    def done(self):
        self.timings[self.key] = time.perf_counter() - self.start


def run_demo(out_dir: str | Path = "demo-out", *, quick: bool = False, cache_dir=None,
             shots: int = 10, repeats: int = 5, seed: int = 0, log=print) -> dict:
    """Run the demo study and write its outputs to ``out_dir``; return the results dict."""
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = _Steps(3, log)
    indent = lambda s: log("  " + s)  # noqa: E731

    step("zoo", f"source zoo ({'quick' if quick else 'full'}) and a {TARGET} reference model")
    zoo = build_zoo(demo_spec(quick), cache_dir, log=indent)
    ref_zoo = build_zoo(reference_spec(quick), cache_dir, log=indent)
    reference_name, reference = next(iter(ref_zoo.items()))
    n_trained = len(zoo.trained) + len(ref_zoo.trained)
    log(f"  {n_trained} trained, {len(zoo) + len(ref_zoo) - n_trained} loaded from {zoo.cache_dir}")
    step.done()

    step("probes", f"knowledge transfer to {TARGET}: estimators, {shots}-shot and full-data "
         "linear probes")
    train, test = load_dataset(TARGET, "train", seed=seed), load_dataset(TARGET, "test", seed=seed)

    def cached_outputs(name, model, data):
        return zoo.outputs(name, data, f"{data.name.replace('/', '-')}-s{seed}")

    ranking = rank_sources(zoo, train, test=test, shots=shots, repeats=repeats, seed=seed,
                           outputs_fn=cached_outputs)
    rows, transferred = [], {}
    for row in ranking.rows:
        name = row["source"]
        entry = zoo.entries[name]
        full = probe_features(cached_outputs(name, None, train).features, train.y,
                              cached_outputs(name, None, test).features, test.y, seed=seed)
        transferred[name] = with_head(zoo[name], full.head).eval()
        rows.append({"source": name, "arch": entry.arch,
                     "k": entry.data.get("k") if isinstance(entry.data, dict) else None,
                     "source_acc": zoo[name].meta["metrics"]["test_acc"],
                     "probe_acc": full.accuracy, "fewshot_acc": row["fewshot_acc"],
                     "fewshot_std": row["fewshot_acc_std"],
                     **{e: row[e] for e in ranking.estimators}})
    step.done()

    n_attack = 10 if quick else 30
    step("matrix", f"transfer matrix on {TARGET}: PGD-10 L∞ ε=0.3 on {10 * n_attack} test "
         "images, transferred models and the reference")
    probe_set = per_class(test, n_attack, seed=seed)
    models = {reference_name: reference, **transferred}
    matrix = transfer_matrix(models, models, probe_set.x, probe_set.y, attack="pgd", eps=0.3,
                             steps=10, seed=seed)
    matrix.meta.update({"dataset": TARGET, "split": "test", "note": "models = source + "
                        "full-data probe head; reference trained on the target"})
    step.done()

    columns = ["source", "arch", "k", "source_acc", "probe_acc", "fewshot_acc", "fewshot_std"]
    log("")
    log(format_table(rows, columns + ranking.estimators))
    log("")
    log(f"estimators vs {shots}-shot probe accuracy ({len(rows)} sources, 95% bootstrap CI)")
    log(format_correlations(ranking.correlations))
    log("")
    log(matrix.format("both_correct"))
    step.timings["total"] = time.perf_counter() - start
    results = {"target": TARGET, "shots": shots, "repeats": repeats, "quick": quick,
               "reference": {"name": reference_name,
                             "test_acc": reference.meta["metrics"]["test_acc"]},
               "sources": rows, "correlations": ranking.correlations,
               "transfer_matrix": matrix.to_dict(), "timings": step.timings}
    files = [write_json(results, out / "results.json"), write_csv(rows, out / "results.csv"),
             plot_probe_accuracy(rows, out / "probe_accuracy.png",
                                 title=f"transfer to {TARGET}: linear probes"),
             plot_scatter_grid(rows, ranking.estimators, "fewshot_acc",
                               out / "estimators_vs_probe.png",
                               title=f"estimators vs {shots}-shot probe accuracy on {TARGET}"),
             matrix.to_csv(out / "transfer_matrix.csv"),
             matrix.plot(out / "transfer_matrix.png")]
    log("")
    log(f"done in {step.timings['total']:.1f}s; wrote " + ", ".join(str(f) for f in files))
    return results
