"""The results store and the job runner: keys, code versions, resume after SIGKILL,
concurrent writers, corrupt and foreign files, missing or damaged artifacts."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import transferability  # noqa: F401  (registers every job kind)
from transferability.jobs import (
    Job,
    JobsFailed,
    Output,
    ResultStore,
    StoreError,
    given,
    graph,
    job_kind,
    run_jobs,
)

WORKER = Path(__file__).with_name("store_worker.py")
CALLS: list[str] = []


@job_kind("test_square")
def square_job(config, inputs):
    CALLS.append("square")
    return config["x"] ** 2


@job_kind("test_sum", artifact="tensors")
def sum_job(config, inputs):
    CALLS.append("sum")
    total = sum(o.artifact if o.value is None else o.value for o in inputs.values())
    if total < 0:
        raise ValueError("negative total")
    return Output(total, {"t": torch.full((3,), float(total))})


def _graph(xs=(1, 2, 3)):
    squares = {f"s{x}": Job("test_square", {"x": x}, label=f"{x}²") for x in xs}
    return Job("test_sum", {}, squares, label="sum")


def test_a_finished_job_is_never_run_again(tmp_path):
    CALLS.clear()
    with ResultStore(tmp_path / "r.sqlite") as store:
        first = run_jobs([_graph()], store)
        assert first.value(_graph()) == 14 and torch.equal(first.artifact(_graph())["t"],
                                                           torch.full((3,), 14.0))
        assert CALLS == ["square"] * 3 + ["sum"] and len(store) == 4
        again = run_jobs([_graph()], store)
        assert CALLS == ["square"] * 3 + ["sum"] and again.computed == []
        assert again.value(_graph()) == 14 and torch.equal(again.artifact(_graph())["t"],
                                                           first.artifact(_graph())["t"])
        # a new input: only the jobs that depend on it run
        run_jobs([_graph((1, 2, 3, 4))], store)
        assert CALLS[4:] == ["square", "sum"]
        record = store.get(_graph().key)
        assert record.kind == "test_sum" and record.inputs == {
            f"s{x}": Job("test_square", {"x": x}).key for x in (1, 2, 3)}
        assert record.duration >= 0 and record.host and record.torch_version == torch.__version__
        assert record.current and record.checksum and record.artifact == f"{record.key}.pt"


def test_keys_depend_on_kind_config_inputs_and_given_content():
    a = Job("test_square", {"x": 2})
    assert a.key == Job("test_square", {"x": 2}).key != Job("test_square", {"x": 3}).key
    m1, m2 = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert given(m1).key == given(m1).key != given(m2).key
    with torch.no_grad():
        m2.load_state_dict(m1.state_dict())
    assert given(m1).key == given(m2).key  # same weights, same key
    bn = torch.nn.BatchNorm1d(3)  # 0-d buffer num_batches_tracked
    assert given(bn).key != given(torch.nn.BatchNorm1d(4)).key
    with pytest.raises(ValueError, match="kind"):
        Job("no_such_kind")
    with pytest.raises(ValueError, match="config"):
        Job("test_square", {"x": object()})


def _changed_by_editing(module, monkeypatch, edit=lambda source: source + b"\n# edited"
                        ) -> set[str]:
    """The job kinds whose code version changes when ``module``'s source is ``edit``ed."""
    kinds = transferability.jobs.list_job_kinds()
    before = {k: graph.code_version(graph.get_job_kind(k).fn) for k in kinds}
    real = graph._source

    def edited(name):
        if name != module:
            return real(name)
        source = edit(real(name))
        assert source != real(name), "the edit changed nothing"
        return source
    monkeypatch.setattr(graph, "_source", edited)
    after = {k: graph.code_version(graph.get_job_kind(k).fn) for k in kinds}
    monkeypatch.undo()
    return {k for k in kinds if before[k] != after[k]}


def test_a_code_change_invalidates_exactly_the_kinds_that_can_reach_it(monkeypatch):
    # PGD: α, the transfer matrix and, through the training package, every training
    changed = _changed_by_editing("transferability.attacks.pgd", monkeypatch)
    assert {"reference_attack", "adversarial_scores", "transfer_row", "train"} <= changed
    assert not changed & {"features", "test_square", "test_sum"}
    # LogME: the estimators, not the trainings, probes, features or transfer matrix
    changed = _changed_by_editing("transferability.estimators.logme", monkeypatch)
    assert "knowledge_scores" in changed
    assert not changed & {"train", "probe", "transfer_row", "features", "test_square"}
    # the job's own function: only its kind
    changed = _changed_by_editing("transferability.transfer", monkeypatch)
    assert "probe" in changed and not changed & {"train", "features", "knowledge_scores"}


def _replacing(old: bytes, new: bytes):
    return lambda source: source.replace(old, new)


def test_report_edits_leave_every_job_as_it_is(monkeypatch):
    """Presentation is no part of a code version: the report's modules, the figures, text
    tables, and each study's display module (its text, figures and section)."""
    for module in ("transferability.html_report.tables", "transferability.html_report.charts",
                   "transferability.html_report.page", "transferability.html_report.sections",
                   "transferability.html_report.robust_transfer", "transferability.plots",
                   "transferability.report"):
        assert _changed_by_editing(module, monkeypatch) == set(), module
    # a study's job module holds no display: anything in it counts
    study = "transferability.studies.robust_transfer"
    for old, new in ((b'row["n"] = len(group)', b'row["n"] = len(group) + 0'),
                     (b"TUNE_LR = 0.05", b"TUNE_LR = 0.06")):
        changed = _changed_by_editing(study, monkeypatch, _replacing(old, new))
        assert "robust_transfer_study" in changed, old


def test_no_job_module_imports_the_display():
    """The studies never import ``html_report`` (it imports them), so no import runs both
    ways and nothing is cut out of a job module's source."""
    import ast
    from pathlib import Path

    import transferability
    root = Path(transferability.__file__).parent
    for path in (root / "studies").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "html_report" not in (node.module or ""), path.name
    assert not hasattr(graph, "presentation")


def test_stale_rows_are_listed_and_dropped_by_gc(tmp_path, monkeypatch, capsys):
    from transferability.cli import main

    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        run_jobs([_graph()], store)
        assert store.stale() == []
    monkeypatch.setitem(graph._VERSIONS, square_job, "0" * 16)  # as if its code changed
    assert main(["results", "gc", "--store", str(path), "--yes"]) == 0
    assert "dropped 3 job(s)" in capsys.readouterr().out
    with ResultStore(path) as store:
        assert [r.kind for r in store.records()] == ["test_sum"]
    # without --yes it asks, and a "no" (or no answer) drops nothing
    monkeypatch.setitem(graph._VERSIONS, sum_job, "1" * 16)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["results", "gc", "--store", str(path)]) == 0
    assert "nothing dropped" in capsys.readouterr().out
    with ResultStore(path) as store:
        assert len(store) == 1


def test_a_failing_job_is_reported_and_the_rest_finishes(tmp_path):
    CALLS.clear()
    bad = Job("test_sum", {}, {"a": Job("test_square", {"x": 5}), "b": given(-100)},
              label="bad")
    after = Job("test_sum", {}, {"bad": bad, "one": Job("test_square", {"x": 1})},
                label="after bad")
    good = _graph((7,))
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(JobsFailed) as info:
            run_jobs([after, good], store)
        assert store.get(good.key).value == 49  # the rest of the graph ran
        failures = info.value.failures
        assert len(failures) == 2  # the failing job and the one that needed it
        assert any("negative total" in m and "test_sum" in m for m in failures.values())
        assert any("skipped" in m for m in failures.values())
        assert "a bug in those checks" in str(info.value)


def test_given_objects_reach_the_job_and_no_store_keeps_nothing():
    job = Job("test_sum", {}, {"a": given(3), "b": Job("test_square", {"x": 2})})
    assert run_jobs([job]).value(job) == 7


@pytest.mark.parametrize("content, words", [
    (b"not a database at all" * 100, "not a results store"),
    (b"SQLite format 3\x00" + random.Random(0).randbytes(2000), "corrupt"),  # seeded: xdist
])
def test_a_corrupt_file_is_refused_by_name_and_left_alone(tmp_path, content, words):
    path = tmp_path / "r.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=words) as info:
        ResultStore(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_a_foreign_or_newer_database_is_refused_and_left_alone(tmp_path):
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        ResultStore(foreign)
    assert foreign.read_bytes() == before
    newer = tmp_path / "newer.sqlite"
    with ResultStore(newer) as store:
        assert len(store) == 0 and not newer.exists()  # reading creates nothing
        run_jobs([_graph()], store)
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = newer.read_bytes()
    with pytest.raises(StoreError, match="newer transferability"):
        ResultStore(newer)
    assert newer.read_bytes() == before


def test_missing_or_damaged_artifacts_are_recomputed_with_a_warning(tmp_path, caplog):
    CALLS.clear()
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_jobs([_graph()], store)
        artifact = store.artifacts / store.get(_graph().key).artifact
        artifact.unlink()
        run = run_jobs([_graph()], store)
        assert run.computed == [_graph().key] and "missing" in caplog.text
        artifact.write_bytes(artifact.read_bytes()[:-10])  # truncated later on
        caplog.clear()
        run = run_jobs([_graph()], store)
        assert run.computed == [_graph().key] and "corrupt" in caplog.text
        assert len(list(store.artifacts.glob("*.corrupt-*"))) == 1
        assert run.value(_graph()) == 14 and CALLS.count("square") == 3


# ---- real studies in subprocesses -----------------------------------------------------

def _worker(store, cache, out, *extra):
    env = {**os.environ, "TRANSFERABILITY_CACHE": str(cache), "TRANSFERABILITY_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, str(WORKER), str(store), str(cache), str(out),
                             *extra], env=env, stderr=subprocess.PIPE)


def _rows(path) -> dict[str, float]:
    """``{key: finished}`` of the store, read without the library."""
    if not Path(path).exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return dict(db.execute("SELECT key, finished FROM jobs"))
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        db.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("uninterrupted")
    proc = _worker(d / "r.sqlite", d / "cache", d / "out.json")
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    return json.loads((d / "out.json").read_text()), _rows(d / "r.sqlite")


@pytest.mark.xdist_group("serial")  # timing/processes: kept off the other workers
def test_sigkill_at_several_points_resumes_to_the_same_numbers(tmp_path, uninterrupted):
    expected, all_rows = uninterrupted
    store, out = tmp_path / "r.sqlite", tmp_path / "out.json"
    total = len(all_rows)
    done: dict[str, float] = {}
    for fraction in (0.05, 0.4, 0.8):  # during training, features/probes, transfer rows
        proc = _worker(store, tmp_path / "cache", out)
        while proc.poll() is None and len(_rows(store)) < max(1, int(fraction * total)):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows = _rows(store)
        assert all(rows[k] == t for k, t in done.items())  # nothing lost or recomputed
        done = rows
    proc = _worker(store, tmp_path / "cache", out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    rows = _rows(store)
    assert set(rows) == set(all_rows)
    assert all(rows[k] == t for k, t in done.items())  # the finished jobs were not rerun
    assert json.loads(out.read_text()) == expected


@pytest.mark.xdist_group("serial")  # timing/processes: kept off the other workers
def test_sigkill_between_an_artifact_and_its_row(tmp_path, uninterrupted):
    expected, _ = uninterrupted
    store, out = tmp_path / "r.sqlite", tmp_path / "out.json"
    proc = _worker(store, tmp_path / "cache", out, "--die-after-artifact", "3")
    assert proc.wait(timeout=300) == -signal.SIGKILL
    orphans = {p.stem for p in (tmp_path / "r.artifacts").glob("*.pt")} - set(_rows(store))
    assert len(orphans) == 1  # written, but no row: never loaded, recomputed
    proc = _worker(store, tmp_path / "cache", out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    assert orphans <= set(_rows(store))
    assert json.loads(out.read_text()) == expected


@pytest.mark.xdist_group("serial")  # timing/processes: kept off the other workers
def test_two_processes_on_one_store(tmp_path, uninterrupted):
    expected, all_rows = uninterrupted
    store = tmp_path / "r.sqlite"
    procs = [_worker(store, tmp_path / f"cache{i}", tmp_path / f"out{i}.json")
             for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    for i in range(2):
        assert json.loads((tmp_path / f"out{i}.json").read_text()) == expected
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert set(_rows(store)) == set(all_rows)
    assert not list((tmp_path / "r.artifacts").glob(".*.tmp"))  # no temporary file left


def test_results_commands(tmp_path, capsys):
    import pyarrow.parquet as pq

    from transferability.cli import main

    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        run_jobs([_graph()], store, study="squares")
    store_arg = ["--store", str(path)]
    assert main(["results", "list", *store_arg]) == 0
    out = capsys.readouterr().out
    assert out.count("test_square") == 3 and "4 of 4 job(s)" in out
    assert main(["results", "list", "--kind", "test_sum", *store_arg]) == 0
    assert "1 of 4 job(s)" in capsys.readouterr().out
    key = _graph().key
    assert main(["results", "show", key[:8], *store_arg]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["result"] == 14 and shown["kind"] == "test_sum" and shown["study"] == "squares"
    assert main(["results", "show", "zzzz", *store_arg]) == 2
    assert "no job 'zzzz'" in capsys.readouterr().err
    for fmt in ("csv", "json", "parquet"):
        target = tmp_path / f"export.{fmt}"
        assert main(["results", "export", "--format", fmt, "--out", str(target),
                     *store_arg]) == 0
    assert (tmp_path / "export.csv").read_text().splitlines()[0].startswith("key,kind,label")
    exported = json.loads((tmp_path / "export.json").read_text())
    assert sorted(r["result"] for r in exported) == [1, 4, 9, 14]
    table = pq.read_table(tmp_path / "export.parquet").to_pylist()
    assert sorted(json.loads(r["result"]) for r in table) == [1, 4, 9, 14]
    # a store file that is not one: exit 2, named, untouched
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"hello" * 10)
    assert main(["results", "list", "--store", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not a results store" in err and len(err.splitlines()) == 1
    assert bad.read_bytes() == b"hello" * 10


def test_an_optional_result_field_round_trips():
    import numpy as np

    from transferability.studies.adv_knowledge import StudyResult
    from transferability.transfer_matrix import TransferMatrix

    m = TransferMatrix(["a"], ["a", "b"], 4, np.array([[1, 2]]), np.array([[3, 3]]),
                       np.array([[1, 1]]), {"a": 3, "b": 4}, np.array([2]), np.array([1]))
    for matrix in (None, m):
        r = StudyResult([{"source": "s"}], ["leep"], "fewshot_acc", [], matrix)
        back = StudyResult.from_dict(json.loads(json.dumps(r.to_dict())))
        assert type(back.transfer_matrix) is type(matrix)
        assert back.to_dict() == r.to_dict()


def test_code_versions_do_not_depend_on_what_was_imported_before():
    snippet = ("import {mods}\nfrom transferability.jobs import graph\n"
               "print(graph.get_job_kind('adv_knowledge_study').version, "
               "graph.get_job_kind('benchmark').version)")
    versions = {subprocess.run([sys.executable, "-c", snippet.format(mods=mods)],
                               capture_output=True, text=True, check=True).stdout
                for mods in ("transferability.studies.adv_knowledge",
                             "transferability.cli, transferability.model_args, "
                             "transferability.studies.benchmark, transferability.html_report")}
    assert len(versions) == 1, versions


def test_a_moved_cache_keeps_the_keys_of_snapshot_trainings(tmp_path):
    from transferability.zoo import load_spec, zoo_jobs

    spec = {"models": [{"name": "a", "arch": "mlp", "data": "digits",
                        "train": {"snapshot_every": 1}}]}
    (a1,) = zoo_jobs(load_spec(spec), tmp_path / "one").values()
    (a2,) = zoo_jobs(load_spec(spec), tmp_path / "two").values()
    assert a1.key == a2.key and a1.inputs["snapshot_root"].value != a2.inputs[
        "snapshot_root"].value
