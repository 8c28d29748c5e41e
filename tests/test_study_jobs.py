"""The surrogate and robust-transfer studies as job graphs: a rerun computes nothing, a
resumed run (finished jobs kept, the rest lost) and a run without a store give the same
numbers as the first."""

import collections
import json
import shutil

import pytest

from transferability.attacks import AttackSpec
from transferability.jobs import ResultStore, run_jobs
from transferability.studies import robust_transfer as robust_module
from transferability.studies import surrogates as surrogate_module
from transferability.studies.robust_transfer import RobustTransferResult, robust_transfer_study
from transferability.studies.surrogates import SurrogateStudyResult, surrogate_study

SURROGATES = {"seeds": (0,), "epochs": 2, "train_per_class": 10, "rhos": (0.05,),
              "lgv_epochs": 1, "lgv_per_epoch": 2,
              "attack": AttackSpec("bim", {"eps": 0.2, "steps": 2}),
              "attack_per_class": 2, "pair_epochs": 1, "sharpness_samples": 2}
ROBUST = {"seeds": (0,), "source_epochs": 1, "source_per_class": 10, "target": "digits",
          "target_per_class": 5, "tune_epochs": 1, "eval_per_class": 1, "radii": (0.1,),
          "recipes": ("linear probe", "NEFT + BN frozen (last 3)"), "robust_attack": "pgd"}


def _surrogates(**changes):
    return surrogate_module.FULL.replace(**{**SURROGATES, **changes})


def _robust(**changes):
    return robust_module.FULL.replace(**{**ROBUST, **changes})


def _same(a, b) -> bool:
    return json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def _kinds(store: ResultStore) -> dict:
    return dict(collections.Counter(r.kind for r in store.records()))


def _check_resume(store: ResultStore, keep: set[str], final, first, result_type) -> None:
    """Drop every row but the ``keep`` kinds (a run killed after them): a rerun computes
    exactly the dropped jobs, from the stored models, and gives the same numbers."""
    n = len(store)
    dropped = store.delete([r.key for r in store.records() if r.kind not in keep])
    run = run_jobs([final], store)
    assert len(run.computed) == dropped and len(store) == n
    assert _same(result_type.from_dict(run.value(final)), first)


def test_surrogate_study_is_a_job_graph(tmp_path, monkeypatch):
    monkeypatch.setitem(surrogate_module.SHARPNESS, "n", 32)  # enters the jobs' configs
    first = surrogate_study(_surrogates(target="digits"), cache_dir=tmp_path)  # the cache's store
    assert isinstance(first, SurrogateStudyResult) and first.settings["pair_epochs"] == 1
    with ResultStore.in_cache(tmp_path) as store:
        # 2 surrogates + 3 victims; 2 epoch snapshots, SAM and LGV measured 3 ways each
        assert _kinds(store) == {"train": 5, "surrogate_snapshot": 2, "surrogate_lgv": 1,
                                 "transfer_row": 4, "surrogate_accuracy": 4, "sharpness": 4,
                                 "surrogate_pair": 2, "surrogate_study": 1}
        n, finished = len(store), {r.key: r.finished for r in store.records()}
        again = surrogate_study(_surrogates(target="digits"), cache_dir=tmp_path, store=store)
        assert len(store) == n and {r.key: r.finished for r in store.records()} == finished
        assert _same(again, first)
        # the final job's stored settings rebuild the same graph
        record, = store.records(kind="surrogate_study")
        settings = record.config["settings"]
        final = surrogate_module._surrogate_jobs(settings, AttackSpec.of(settings["attack"]),
                                                 tmp_path)
        assert final.key == record.key
        # without a store: every job computed in memory, the same numbers
        assert _same(SurrogateStudyResult.from_dict(run_jobs([final], None).value(final)),
                     first)
        # the epoch snapshots (a side output of training) lost too: they are retrained
        shutil.rmtree(tmp_path / "snapshots")
        _check_resume(store, {"train"}, final, first, SurrogateStudyResult)


def test_robust_transfer_study_is_a_job_graph(tmp_path):
    first = robust_transfer_study(_robust(), cache_dir=tmp_path)
    assert isinstance(first, RobustTransferResult) and len(first.rows) == 3 * 2
    with ResultStore.in_cache(tmp_path) as store:
        assert _kinds(store) == {"train": 3, "fine_tune": 6, "robust_accuracy": 6,
                                 "robust_transfer_study": 1}
        n, finished = len(store), {r.key: r.finished for r in store.records()}
        again = robust_transfer_study(_robust(), cache_dir=tmp_path, store=store)
        assert len(store) == n and {r.key: r.finished for r in store.records()} == finished
        assert _same(again, first)
        record, = store.records(kind="robust_transfer_study")
        final = robust_module._robust_jobs(record.config["settings"], tmp_path)
        assert final.key == record.key
        assert _same(RobustTransferResult.from_dict(run_jobs([final], None).value(final)),
                     first)
        _check_resume(store, {"train", "fine_tune"}, final, first, RobustTransferResult)


def test_study_jobs_refuse_bad_settings_before_any_job(tmp_path):
    with pytest.raises(ValueError, match="rhos"):
        surrogate_study(_surrogates(target="digits", rhos=()), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="recipes"):
        robust_transfer_study(_robust(recipes=("nope",)), cache_dir=tmp_path)
    assert not (tmp_path / "results.sqlite").exists()
