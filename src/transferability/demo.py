"""``transferability demo``: the whole study on bundled data, in a few minutes on a CPU.

1. **Zoo** — architectures × fonts/animals mixture sources (``configs/demo.yaml``), and a
   reference model trained on the target task (``mnist``).
2. **Knowledge transfer** — each source's estimator scores (LEEP, NCE, H-score, LogME,
   TransRate), few-shot and full-data linear probes (the few-shot probe is the
   discriminative ground truth, docs/architecture.md) and the affine-fit loss.
3. **Adversarial transfer** — α1, α2, α12, α1·α2, gradient alignment and attribution
   affinity from the reference to each source; a PGD transfer matrix between the
   reference and the transferred models; every score's agreement with the few-shot probe
   and the reverse direction (:mod:`transferability.study`); the synthetic theory check.

Writes ``results.json``, ``results.csv``, ``transfer_matrix.{csv,png}``, PNG plots and
``report.html`` (every study in the results store, :mod:`transferability.html_report`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .adversarial import theory_check
from .data import load_dataset
from .html_report import write_report
from .jobs import ResultStore
from .plots import plot_probe_accuracy, plot_scatter_grid
from .report import format_table, write_csv, write_json
from .robust_transfer_study import QUICK as QUICK_ROBUST
from .robust_transfer_study import plot_robust_transfer, robust_transfer_study
from .study import adv_knowledge_study, reference_spec
from .surrogate_study import QUICK as QUICK_SURROGATES
from .surrogate_study import plot_surrogate_study, surrogate_study
from .zoo import build_zoo, load_spec

__all__ = ["demo_spec", "run_demo"]

log = logging.getLogger("transferability")

TARGET = "mnist"
#: ``demo --quick``'s surrogate study: one seed, two epochs, a few images.
TINY_SURROGATES = {"seeds": (0,), "epochs": 3, "n_per_class": 60, "rhos": (0.05, 0.1),
                   "lgv_epochs": 1, "lgv_per_epoch": 2,
                   "attack_options": {"eps": 0.2, "steps": 5}, "attack_per_class": 4,
                   "pair_epochs": 1, "sharpness_samples": 4}
#: ``demo --quick``'s robust-transfer study.
TINY_ROBUST = {"seeds": (0,), "source_epochs": 1, "source_per_class": 40, "target": "mnist",
               "target_per_class": 20, "tune_epochs": 1, "eval_per_class": 3, "radii": (0.1,),
               "methods": ("linear probe", "NEFT + BN frozen (last 3)")}
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


def run_demo(out_dir: str | Path = "demo-out", *, quick: bool = False, cache_dir=None,
             shots: int = 10, repeats: int = 5, seed: int = 0, store: ResultStore | None = None,
             show_progress: bool | None = None) -> tuple[dict, str]:
    """Run the demo study, write its outputs and ``report.html`` to ``out_dir``; return the
    results and the text report (tables). Every part is a job of the results store
    (``store``, default: the one in the cache directory), so a rerun computes only what is
    missing. Progress goes to the ``transferability`` logger."""
    own = store is None
    store = ResultStore.in_cache(cache_dir) if own else store
    try:
        return _run_demo(Path(out_dir), quick, cache_dir, shots, repeats, seed, store,
                         show_progress)
    finally:
        if own:
            store.close()


def _run_demo(out: Path, quick: bool, cache_dir, shots: int, repeats: int, seed: int,
              store: ResultStore, show_progress: bool | None) -> tuple[dict, str]:
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    log.info("[1/4] source zoo (%s) and a %s reference model ...", "quick" if quick else "full",
             TARGET)
    t = time.perf_counter()
    zoo = build_zoo(demo_spec(quick), cache_dir, show_progress=show_progress, store=store)
    ref_spec = reference_spec(TARGET, epochs=2 if quick else 3,
                              n_per_class=100 if quick else None, seed=seed)
    ref_zoo = build_zoo(ref_spec, cache_dir, show_progress=show_progress, store=store)
    (ref_name, reference), = ref_zoo.items()
    n_trained = len(zoo.trained) + len(ref_zoo.trained)
    log.info("  %d trained, %d loaded from %s", n_trained, len(zoo) + len(ref_zoo) - n_trained,
             zoo.cache_dir)
    zoo_seconds = time.perf_counter() - t

    log.info("[2/4] adversarial <-> knowledge transfer study, target %s ...", TARGET)
    train, test = load_dataset(TARGET, "train", seed=seed), load_dataset(TARGET, "test", seed=seed)

    # α: the authors' attack with 10/20 steps instead of 50, for time
    options = {"n_per_class": 10 if quick else 20, "shots": shots, "repeats": repeats,
               "seed": seed, "attack_options": {"steps": 10 if quick else 20}}
    study = adv_knowledge_study(reference, zoo, train, test, store=store,
                                show_progress=show_progress, **options)
    for row in study.rows:
        entry = zoo.entries[row["source"]]
        row.update({"arch": entry.arch,
                    "k": entry.data.get("k") if isinstance(entry.data, dict) else None,
                    "source_acc": zoo[row["source"]].meta["metrics"]["test_acc"]})

    log.info("[3/4] surrogates: how training controls transfer (%s) ...",
             "tiny" if quick else "quick")
    t = time.perf_counter()
    settings = {**(TINY_SURROGATES if quick else QUICK_SURROGATES), "target": TARGET}
    surrogates = surrogate_study(cache_dir=cache_dir, store=store, show_progress=show_progress,
                                 **settings)
    surrogate_seconds = time.perf_counter() - t

    log.info("[4/4] robust transfer: keeping a robust source's robustness (%s) ...",
             "tiny" if quick else "quick")
    t = time.perf_counter()
    settings = dict(TINY_ROBUST if quick else QUICK_ROBUST)
    robust = robust_transfer_study(cache_dir=cache_dir, store=store,
                                   show_progress=show_progress, **settings)
    robust_seconds = time.perf_counter() - t

    t = time.perf_counter()
    theory = [r.record() for r in theory_check()]
    theory_seconds = time.perf_counter() - t

    report = "\n".join([
        study.format(), "", study.transfer_matrix.format("both_correct"), "",
        "synthetic check: sources = a target MLP with weights perturbed at each scale; "
        "α^(T→S) (exact Jacobians) should fall and the affine-fit loss rise",
        format_table(theory), "",
        "surrogates: how training controls transfer (transferability study surrogates runs "
        "the full study)", surrogates.format(), "",
        "robust transfer (transferability study robust-transfer runs the full study)",
        robust.format()])
    timings = {"zoo": zoo_seconds, **study.timings, "theory": theory_seconds,
               "surrogates": surrogate_seconds, "robust_transfer": robust_seconds,
               "total": time.perf_counter() - start}
    results = {"target": TARGET, "shots": shots, "repeats": repeats, "quick": quick,
               "reference": {"name": ref_name, "test_acc": reference.meta["metrics"]["test_acc"]},
               **study.to_dict(), "theory": theory, "surrogates": surrogates.to_dict(),
               "robust_transfer": robust.to_dict(),
               "timings": timings}
    files = [write_json(results, out / "results.json"), write_csv(study.rows, out / "results.csv"),
             plot_probe_accuracy(study.rows, out / "probe_accuracy.png",
                                 title=f"transfer to {TARGET}: linear probes"),
             plot_scatter_grid(study.rows, study.predictors, study.truth,
                               out / "scores_vs_probe.png",
                               title=f"scores vs {shots}-shot probe accuracy on {TARGET}"),
             study.transfer_matrix.to_csv(out / "transfer_matrix.csv"),
             study.transfer_matrix.plot(out / "transfer_matrix.png"),
             *plot_surrogate_study(surrogates, out), *plot_robust_transfer(robust, out),
             write_report(store, out / "report.html")]
    report += (f"\n\ndone in {timings['total']:.1f}s; wrote "
               + ", ".join(str(f) for f in files))
    return results, report
