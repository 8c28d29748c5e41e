"""``transferability demo``: the whole study on bundled data, in a few minutes on a CPU.

1. **Zoo** — architectures × fonts/animals mixture sources (``configs/demo.yaml``), and a
   reference model trained on the target task (``mnist``).
2. **Knowledge transfer** — each source's estimator scores (LEEP, NCE, H-score, LogME,
   TransRate), few-shot and full-data linear probes (the few-shot probe is the
   discriminative ground truth, docs/architecture.md) and the affine-fit loss.
3. **Adversarial transfer** — α1, α2, α12, α1·α2, gradient alignment and attribution
   affinity from the reference to each source; a PGD transfer matrix between the
   reference and the transferred models; every score's agreement with the few-shot probe
   and the reverse direction (:mod:`transferability.studies.adv_knowledge`); the synthetic
   theory check.

Writes ``results.json``, ``results.csv``, ``transfer_matrix.{csv,png}``, PNG plots and
``report.html`` (every study in the results store, :mod:`transferability.html_report`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ._validation import check_choice
from .adversarial import theory_check
from .attacks import AttackSpec
from .baselines import model_accuracy
from .data import dataset_info, family_of, list_datasets, load_dataset
from .html_report import format_result, result_files, write_report
from .jobs import ResultStore
from .plots import plot_probe_accuracy, plot_scatter_grid
from .report import format_table, write_csv, write_json
from .studies import list_studies
from .studies.adv_knowledge import adv_knowledge_study, reference_spec
from .zoo import build_zoo, load_spec

__all__ = ["demo_spec", "run_demo"]

log = logging.getLogger("transferability")

TARGET = "mnist"
QUICK_MODELS = ("cnn-k0", "cnn-k5", "cnn-k10", "mlp-k5")
#: The sources' training for a target of another family than the demo zoo's (grey): with a
#: colour target (``demo --target colour-digits``) the fonts/animals mixtures become their
#: colour variants (:attr:`~transferability.data.DatasetInfo.variant_of`, generated with
#: another seed than the target's images), trained long enough to learn them; the attacks
#: use the target's suggested ε.
FAMILY_TRAIN = {"colour": {"n_per_class": 300, "epochs": 8, "batch_size": 64}}


def demo_targets() -> list[str]:
    """The demo's targets: mnist, and every dataset of a family it has training for."""
    return [TARGET, *(d for d in list_datasets() if dataset_info(d).family in FAMILY_TRAIN)]


def _variant(name: str, family: str) -> str:
    """The dataset of ``family`` that redraws ``name``."""
    return next(d for d in list_datasets() if dataset_info(d).variant_of == name
                and dataset_info(d).family == family)


def demo_spec(quick: bool = False, target: str = TARGET) -> dict:
    """The bundled demo zoo spec; ``quick`` keeps 4 models on 100 samples/class, 1 epoch.
    A target of another family gets sources of its family (:data:`FAMILY_TRAIN`)."""
    family, models = family_of(target), []
    for e in load_spec("demo"):
        if quick and e.name not in QUICK_MODELS:
            continue
        data = dict(e.data) | ({"n_per_class": 100} if quick else {})
        train = dict(e.train) | ({"epochs": 1} if quick else {})
        if family in FAMILY_TRAIN:
            own = FAMILY_TRAIN[family]
            data = {"mixture": [_variant(d, family) for d in data["mixture"]], "k": data["k"],
                    "seed": 1, "n_per_class": own["n_per_class"]}
            train |= {k: v for k, v in own.items() if k != "n_per_class"}
        models.append({"name": e.name, "arch": e.arch, "data": data, "train": train})
    return {"models": models}


def run_demo(out_dir: str | Path = "demo-out", *, quick: bool = False, target: str = TARGET,
             cache_dir=None, shots: int = 10, repeats: int = 5, seed: int = 0,
             store: ResultStore | None = None, show_progress: bool | None = None,
             device=None) -> tuple[dict, str]:
    """Run the demo study on ``target`` (one of :func:`demo_targets`: ``mnist``, or a colour
    task such as ``colour-digits``),
    write its outputs and ``report.html`` to ``out_dir``; return the results and the text
    report (tables). Every part is a job of the results store (``store``, default: the one
    in the cache directory), so a rerun computes only what is missing. Progress goes to the
    ``transferability`` logger."""
    check_choice(target, "target", demo_targets())
    own = store is None
    store = ResultStore.in_cache(cache_dir) if own else store
    try:
        return _run_demo(Path(out_dir), quick, target, cache_dir, shots, repeats, seed, store,
                         show_progress, device)
    finally:
        if own:
            store.close()


def _zoo_and_reference(quick: bool, target: str, cache_dir, seed: int, store: ResultStore,
                       show_progress: bool | None, device):
    """The demo zoo and a reference model trained on ``target`` (both stored jobs)."""
    zoo = build_zoo(demo_spec(quick, target), cache_dir, show_progress=show_progress,
                    store=store, device=device)
    own = FAMILY_TRAIN.get(family_of(target))
    if own:
        ref_spec = reference_spec(target, epochs=own["epochs"],
                                  train_per_class=own["n_per_class"], seed=seed)
    else:
        ref_spec = reference_spec(target, epochs=2 if quick else 3,
                                  train_per_class=100 if quick else None, seed=seed)
    ref_zoo = build_zoo(ref_spec, cache_dir, show_progress=show_progress, store=store,
                        device=device)
    (ref_name, reference), = ref_zoo.items()
    n_trained = len(zoo.trained) + len(ref_zoo.trained)
    log.info("  %d trained, %d loaded from %s", n_trained, len(zoo) + len(ref_zoo) - n_trained,
             zoo.cache_dir)
    return zoo, ref_name, reference


def _run_demo(out: Path, quick: bool, target: str, cache_dir, shots: int, repeats: int,
              seed: int, store: ResultStore, show_progress: bool | None,
              device) -> tuple[dict, str]:
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    steps = 2 + sum(s.tiny is not None for s in list_studies())
    log.info("[1/%d] source zoo (%s) and a %s reference model ...", steps,
             "quick" if quick else "full", target)
    t = time.perf_counter()
    zoo, ref_name, reference = _zoo_and_reference(quick, target, cache_dir, seed, store,
                                                  show_progress, device)
    zoo_seconds = time.perf_counter() - t

    log.info("[2/%d] adversarial <-> knowledge transfer study, target %s ...", steps, target)
    train, test = load_dataset(target, "train", seed=seed), load_dataset(target, "test", seed=seed)

    # α: the authors' attack with 10/20 steps instead of 50, for time
    eps = dataset_info(target).suggested_eps  # the task's radius, else the authors' 0.1
    attack = AttackSpec("pgd", {"steps": 10 if quick else 20, **({"eps": eps} if eps else {})})
    options = {"alpha_per_class": 10 if quick else 20, "shots": shots, "repeats": repeats,
               "seed": seed, "attack": attack}
    study = adv_knowledge_study(reference, zoo, train, test, store=store, device=device,
                                show_progress=show_progress, **options)
    for row in study.rows:
        entry = zoo.entries[row["source"]]
        row.update({"arch": entry.arch,
                    "k": entry.data.get("k") if isinstance(entry.data, dict) else None,
                    "source_acc": model_accuracy(zoo[row["source"]].meta)})

    # every other study with demo settings: its quick ones, or its tiny ones with --quick
    others = []  # (study, result, seconds)
    for i, each in enumerate((s for s in list_studies() if s.tiny is not None), start=3):
        log.info("[%d/%d] %s (%s) ...", i, steps, _heading(each), "tiny" if quick else "quick")
        t = time.perf_counter()
        settings = each.for_target(each.tiny if quick else each.quick, target).replace(
            target=target)
        result = each.run(settings, store=store, cache_dir=cache_dir, device=device,
                          show_progress=show_progress)
        others.append((each, result, time.perf_counter() - t))

    t = time.perf_counter()
    theory = [r.record() for r in theory_check(device=device)]
    theory_seconds = time.perf_counter() - t

    report = "\n".join([
        format_result(study), "", study.transfer_matrix.format("both_correct"), "",
        "synthetic check: sources = a target MLP with weights perturbed at each scale; "
        "α^(T→S) (exact Jacobians) should fall and the affine-fit loss rise",
        format_table(theory),
        *(f"\n{_heading(s)} (transferability study {s.name} runs the full study)\n"
          + format_result(result) for s, result, _ in others)])
    timings = {"zoo": zoo_seconds, **study.timings, "theory": theory_seconds,
               **{_key(s): seconds for s, _, seconds in others},
               "total": time.perf_counter() - start}
    results = {"target": target, "shots": shots, "repeats": repeats, "quick": quick,
               **study.to_dict(), "theory": theory,
               "reference": {"name": ref_name, "accuracy": model_accuracy(reference.meta),
                             "held_out": study.to_dict()["reference"]},
               **{_key(s): result.to_dict() for s, result, _ in others},
               "timings": timings}
    files = [write_json(results, out / "results.json"), write_csv(study.rows, out / "results.csv"),
             plot_probe_accuracy(study.rows, out / "probe_accuracy.png",
                                 title=f"transfer to {target}: linear probes"),
             plot_scatter_grid(study.rows, study.predictors, study.truth,
                               out / "scores_vs_probe.png",
                               title=f"scores vs {shots}-shot probe accuracy on {target}"),
             study.transfer_matrix.to_csv(out / "transfer_matrix.csv"),
             study.transfer_matrix.plot(out / "transfer_matrix.png"),
             *(f for _, result, _ in others for f in result_files(result, out)),
             write_report(store, out / "report.html")]
    report += (f"\n\ndone in {timings['total']:.1f}s; wrote "
               + ", ".join(str(f) for f in files))
    return results, report


def _heading(study) -> str:
    return study.title[0].lower() + study.title[1:]


def _key(study) -> str:
    """The study's key in ``results.json`` and its timings."""
    return study.name.replace("-", "_")
