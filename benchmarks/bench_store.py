"""Results-store overhead: one adversarial <-> knowledge study's job graph run in memory
(``store=None``) and through a fresh SQLite store, side by side.

Goal: the store costs < 3% of the study's time (its rows, artifact files with fsync,
checksums, and loading every input back as the store gives it). The study: 4 zoo sources
(mlp, lenet, cnn on fonts/animals) on a 2,000-image mnist target, 10-shot probes × 5,
α (20 PGD steps) on 20 images per class, and a 5 × 5 transfer matrix. Rounds alternate
the order; each side's time is its best round.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from transferability.attacks import AttackSpec
from transferability.data import dataset_from_spec
from transferability.jobs import ResultStore, run_jobs
from transferability.studies.adv_knowledge import adv_knowledge_jobs
from transferability.zoo import build_zoo

ROUNDS, GOAL = 3, 1.03
SPEC = {"train": {"epochs": 1},
        "models": [{"name": name, "arch": arch, "data": {"dataset": data, "n_per_class": 100}}
                   for name, arch, data in (("mlp-fonts", "mlp", "fonts"),
                                            ("lenet-animals", "lenet", "animals"),
                                            ("cnn-fonts", "cnn", "fonts"),
                                            ("cnn-animals", "cnn", "animals"))]}
REFERENCE = {"train": {"epochs": 1},
             "models": [{"name": "ref", "arch": "cnn", "data": {"dataset": "mnist",
                                                                "n_per_class": 100}}]}


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zoo = build_zoo(SPEC, tmp)
        (reference,) = build_zoo(REFERENCE, tmp).values()
        train = dataset_from_spec({"dataset": "mnist", "n_per_class": 100}, "train")
        test = dataset_from_spec({"dataset": "mnist", "n_per_class": 100}, "test")
        final = adv_knowledge_jobs(reference, dict(zoo), train, test,
                                   attack=AttackSpec("pgd", {"steps": 20}))
        times = {"memory": [], "store": []}
        results = {}
        for r in range(ROUNDS):
            for side in (("memory", "store") if r % 2 == 0 else ("store", "memory")):
                store = ResultStore(tmp / f"r{r}.sqlite") if side == "store" else None
                start = time.perf_counter()
                run = run_jobs([final], store, show_progress=False)
                times[side].append(time.perf_counter() - start)
                results[side] = run.value(final)
                n_jobs = len(run.computed)
                if store is not None:
                    store.close()
        assert results["memory"]["rows"] == results["store"]["rows"]
        memory, stored = min(times["memory"]), min(times["store"])
        ratio = stored / memory
        print(f"study graph, {n_jobs} jobs: in memory {memory:.2f}s, with the store "
              f"{stored:.2f}s -> {100 * (ratio - 1):+.1f}% "
              f"(goal < {100 * (GOAL - 1):.0f}%: {'met' if ratio < GOAL else 'MISSED'})")
        print(f"  rounds: memory {', '.join(f'{t:.2f}' for t in times['memory'])}; store "
              f"{', '.join(f'{t:.2f}' for t in times['store'])}")


if __name__ == "__main__":
    main()
