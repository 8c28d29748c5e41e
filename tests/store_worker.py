"""A small adversarial <-> knowledge study on a results store, run in a subprocess by
tests/test_store.py (which kills it with SIGKILL at chosen moments).

usage: python store_worker.py STORE CACHE OUT_JSON [--die-after-artifact N]
"""

import json
import os
import signal
import sys

import torch

torch.set_num_threads(1)
os.environ.setdefault("TRANSFERABILITY_PROGRESS", "0")

from transferability.attacks import AttackSpec  # noqa: E402
from transferability.data import dataset_from_spec  # noqa: E402
from transferability.jobs import ResultStore  # noqa: E402
from transferability.studies.adv_knowledge import adv_knowledge_study  # noqa: E402
from transferability.zoo import build_zoo  # noqa: E402

SPEC = {"train": {"epochs": 1, "batch_size": 64},
        "models": [{"name": f"m{i}", "arch": "mlp", "data": {"dataset": "fonts",
                                                            "n_per_class": 20},
                    "train": {"seed": i}} for i in range(3)]}
REFERENCE = {"train": {"epochs": 1, "batch_size": 64},
             "models": [{"name": "ref", "arch": "mlp",
                         "data": {"dataset": "digits", "n_per_class": 30}}]}


def main(store_path, cache, out, die_after=None):
    store = ResultStore(store_path)
    if die_after is not None:  # SIGKILL between an artifact's file and its row
        put, seen = store.put, []

        def dying_put(job, value, artifact=None, **kw):
            if artifact is not None:
                seen.append(job.key)
                if len(seen) == die_after:
                    from transferability._files import write_bytes
                    write_bytes(store.artifacts / f"{job.key}.pt", artifact)
                    os.kill(os.getpid(), signal.SIGKILL)
            return put(job, value, artifact, **kw)
        store.put = dying_put
    zoo = build_zoo(SPEC, cache, store=store)
    (reference,) = build_zoo(REFERENCE, cache, store=store).values()
    train = dataset_from_spec({"dataset": "digits", "n_per_class": 20}, "train")
    test = dataset_from_spec({"dataset": "digits", "n_per_class": 10}, "test")
    result = adv_knowledge_study(reference, dict(zoo), train, test, alpha_per_class=4, shots=3,
                                 repeats=2, attack=AttackSpec("pgd", {"steps": 3}),
                                 matrix_attack=AttackSpec("pgd", {"steps": 3}), store=store)
    data = result.to_dict()
    data.pop("timings")
    with open(out, "w") as f:
        json.dump(data, f, sort_keys=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    die = int(args[args.index("--die-after-artifact") + 1]) if "--die-after-artifact" in args \
        else None
    main(*args[:3], die_after=die)
