"""The Dask backend: the same numbers as the local one, a killed worker's job retried, a
failing job reported while the rest finishes, and a local cluster on loopback only."""

import json
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="Dask's distributed is not installed: "
                    "pip install 'transferability[dask]'")

import psutil  # noqa: E402  (a dependency of distributed)

sys.path.insert(0, str(Path(__file__).parent))  # the workers import dask_kinds too
import dask_kinds  # noqa: E402,F401
import store_worker  # noqa: E402
from transferability.attacks import AttackSpec
from transferability.data import dataset_from_spec  # noqa: E402
from transferability.jobs import Job, JobsFailed, ResultStore, run_jobs  # noqa: E402
from transferability.studies.adv_knowledge import adv_knowledge_study  # noqa: E402
from transferability.zoo import build_zoo  # noqa: E402

# local clusters start processes: one worker of `pytest -n auto` runs them, one after another
pytestmark = pytest.mark.xdist_group("serial")


def _study(tmp_path, backend: str, **options) -> dict:
    with ResultStore(tmp_path / f"{backend}.sqlite") as store:
        zoo = build_zoo(store_worker.SPEC, tmp_path, store=store)
        (reference,) = build_zoo(store_worker.REFERENCE, tmp_path, store=store).values()
        train = dataset_from_spec({"dataset": "digits", "n_per_class": 20}, "train")
        test = dataset_from_spec({"dataset": "digits", "n_per_class": 10}, "test")
        result = adv_knowledge_study(reference, dict(zoo), train, test, alpha_per_class=4, shots=3,
                                     repeats=2, attack=AttackSpec("pgd", {"steps": 3}),
                                     matrix_attack=AttackSpec("pgd", {"steps": 3}), store=store,
                                     backend=backend, **options)
        hosts = {r.host for r in store.records(kind="probe")}
    data = result.to_dict()
    data.pop("timings")
    return data, hosts


def test_dask_gives_the_numbers_of_the_local_backend(tmp_path):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # a worker's BLAS runs one thread: SFDA's solve then agrees
        local, _ = _study(tmp_path, "local")
    dask, _ = _study(tmp_path, "dask", workers=2)
    assert json.dumps(dask, sort_keys=True) == json.dumps(local, sort_keys=True)
    assert dask["rows"] and dask["transfer_matrix"]["fooled"]


def test_a_killed_worker_has_its_job_retried(tmp_path):
    marker = tmp_path / "died"
    jobs = [Job("test_die_once", {"x": 21, "marker": str(marker)})] + \
        [Job("test_add", {"x": i}) for i in range(4)]
    with ResultStore(tmp_path / "r.sqlite") as store:
        run = run_jobs(jobs, store, backend="dask", workers=2)
        assert marker.exists()  # a worker died in the first try
        assert run.value(jobs[0]) == 42 and len(store) == 5


def test_a_failing_job_is_reported_and_the_rest_completes(tmp_path):
    bad = Job("test_fail", {"x": 7}, label="bad")
    after_bad = Job("test_add", {"x": 1}, {"a": bad})
    good = Job("test_add", {"x": 5}, {"a": Job("test_add", {"x": 2})})
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(JobsFailed) as info:
            run_jobs([after_bad, good], store, backend="dask", workers=2, retries=0)
        assert store.get(good.key).value == 7
    messages = list(info.value.failures.values())
    assert len(messages) == 2
    assert any(bad.key in m and '{"x": 7}' in m and "fails on purpose" in m for m in messages)
    assert any("skipped" in m for m in messages)


def test_a_local_cluster_listens_on_loopback_only(tmp_path):
    seen: set[str] = set()
    stop = threading.Event()

    def watch():
        me = psutil.Process()
        while not stop.is_set():
            for proc in [me, *me.children(recursive=True)]:
                try:
                    for c in proc.net_connections(kind="inet"):
                        if c.status == psutil.CONN_LISTEN:
                            seen.add(c.laddr.ip)
                except psutil.Error:
                    pass
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        jobs = [Job("test_add", {"x": i, "sleep": 0.3}) for i in range(6)]
        run = run_jobs(jobs, None, backend="dask", workers=2)
    finally:
        stop.set()
        watcher.join()
    assert [run.value(j) for j in jobs] == list(range(6))
    assert seen, "saw no listening socket: the watcher did not run during the cluster"
    assert seen <= {"127.0.0.1"}, f"listening on {sorted(seen)}"
