"""``transferability demo``: the whole study on bundled data, in a few minutes on a CPU.

Builds the demo zoo (architectures × fonts/animals mixture sources, see
``configs/demo.yaml``), takes ``mnist`` as the target task, and measures each source's
knowledge transfer with a full-data and a few-shot linear probe (the few-shot probe is
the discriminative ground truth; DESIGN.md). Writes ``results.json``, ``results.csv``
and PNG plots to the output folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from .data import load_dataset
from .plots import plot_probe_accuracy
from .report import format_table, write_csv, write_json
from .transfer import probe_features
from .zoo import build_zoo, load_spec

__all__ = ["demo_spec", "run_demo"]

TARGET = "mnist"
QUICK_MODELS = ("cnn-k0", "cnn-k5", "cnn-k10", "mlp-k5")


def demo_spec(quick: bool = False) -> dict:
    """The bundled demo zoo spec; ``quick`` keeps 4 models on 100 samples/class, 1 epoch."""
    entries = load_spec("demo")
    models = []
    for e in entries:
        if quick and e.name not in QUICK_MODELS:
            continue
        data = dict(e.data) | ({"n_per_class": 100} if quick else {})
        train = dict(e.train) | ({"epochs": 1} if quick else {})
        models.append({"name": e.name, "arch": e.arch, "data": data, "train": train})
    return {"models": models}


def _source_k(entry) -> int | None:
    return entry.data.get("k") if isinstance(entry.data, dict) else None


def run_demo(out_dir: str | Path = "demo-out", *, quick: bool = False, cache_dir=None,
             shots: int = 10, repeats: int = 5, seed: int = 0, log=print) -> dict:
    """Run the demo study and write its outputs to ``out_dir``; return the results dict."""
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    log(f"[1/2] source zoo ({'quick' if quick else 'full'}) ...")
    t = time.perf_counter()
    zoo = build_zoo(demo_spec(quick), cache_dir, log=lambda s: log("  " + s))
    timings["zoo"] = time.perf_counter() - t
    log(f"  {len(zoo.trained)} trained, {len(zoo.cached)} loaded from {zoo.cache_dir}")

    log(f"[2/2] knowledge transfer to {TARGET}: full-data and {shots}-shot linear probes ...")
    t = time.perf_counter()
    train, test = load_dataset(TARGET, "train", seed=seed), load_dataset(TARGET, "test", seed=seed)
    rows = []
    for name, entry in zoo.entries.items():
        ftr = zoo.outputs(name, train, f"{TARGET}-train-s{seed}")
        fte = zoo.outputs(name, test, f"{TARGET}-test-s{seed}")
        full = probe_features(ftr.features, train.y, fte.features, test.y, seed=seed)
        few = probe_features(ftr.features, train.y, fte.features, test.y, shots=shots,
                             repeats=repeats, seed=seed)
        rows.append({"source": name, "arch": entry.arch, "k": _source_k(entry),
                     "source_acc": zoo[name].meta["metrics"]["test_acc"],
                     "probe_acc": full.accuracy, "fewshot_acc": few.accuracy,
                     "fewshot_std": few.accuracy_std})
    timings["probes"] = time.perf_counter() - t

    columns = ["source", "arch", "k", "source_acc", "probe_acc", "fewshot_acc", "fewshot_std"]
    log("")
    log(format_table(rows, columns))
    timings["total"] = time.perf_counter() - start
    results = {"target": TARGET, "shots": shots, "repeats": repeats, "quick": quick,
               "sources": rows, "timings": timings}
    files = [write_json(results, out / "results.json"), write_csv(rows, out / "results.csv"),
             plot_probe_accuracy(rows, out / "probe_accuracy.png",
                                 title=f"transfer to {TARGET}: linear probes")]
    log("")
    log(f"done in {timings['total']:.1f}s; wrote " + ", ".join(str(f) for f in files))
    return results
