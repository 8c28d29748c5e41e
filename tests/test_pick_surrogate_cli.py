"""``transferability pick-surrogate``: the model path and the black-box path (a file of the
victim's labels) rank alike; bad inputs are exit 2 with one line, before any candidate runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferability.cli import main
from transferability.data import dataset_from_spec

MODELS = '''
import torch
from torch import nn


def net(seed, classes=10, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def a():
    return net(0)


def b():
    return net(1, hidden=8)


def c():
    return net(2, hidden=32)


def victim():
    return net(3)


def three():
    return net(4, classes=3)


def colour():
    torch.manual_seed(5)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
'''


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "pick_models.py"
    path.write_text(MODELS)
    return lambda name: f"py:{path}:{name}"


def _run(tmp_path, models, *extra, out="out"):
    return main(["pick-surrogate", "--candidates", models("a"), models("b"), models("c"),
                 "--data", "digits", "--n-per-class", "5", "--out", str(tmp_path / out),
                 "--cache-dir", str(tmp_path / "cache"), *extra])


def test_the_black_box_path_ranks_as_the_model_path(models, tmp_path, capsys):
    assert _run(tmp_path, models, "--victim", models("victim"), out="model") == 0
    by_model = json.loads((tmp_path / "model" / "pick_surrogate.json").read_text())
    # the victim's labels alone, in a CSV with the data's ids (positions), rows reversed
    import torch
    from tests.test_pick_surrogate_cli import MODELS  # noqa: F401  (the same victim)
    namespace: dict = {}
    exec(MODELS, namespace)
    data = dataset_from_spec("digits", "test", per_class=5)
    labels = namespace["victim"]()(data.x).argmax(1).tolist()
    rows = [f"{i},{lab}" for i, lab in enumerate(labels)][::-1]
    (tmp_path / "victim.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    assert _run(tmp_path, models, "--victim-outputs", str(tmp_path / "victim.csv"),
                out="file") == 0
    by_file = json.loads((tmp_path / "file" / "pick_surrogate.json").read_text())
    for score, row in by_file["scores"].items():  # every label-based score is the same
        assert row == pytest.approx(by_model["scores"][score]), score
    assert "affine_fit" in by_model["scores"] and "affine_fit" not in by_file["scores"]
    assert torch.is_tensor(data.x)


@pytest.mark.parametrize(("case", "words"), [
    ("stray-ids", "ids not in the data"),
    ("victim-classes", "--victim: three gives outputs shaped (1, 3)"),
    ("misfit-candidate", "--candidates"),
    ("validate-black-box", "--validate: crafting and measuring transfer needs the victim"),
])
def test_bad_inputs_are_one_line_before_any_candidate_runs(models, tmp_path, capsys, case,
                                                           words):
    if case == "stray-ids":
        rows = [f"{i + 1000},0" for i in range(50)]
        (tmp_path / "v.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
        extra = ["--victim-outputs", str(tmp_path / "v.csv")]
    elif case == "victim-classes":
        extra = ["--victim", models("three")]
    elif case == "misfit-candidate":
        extra = ["--victim", models("victim"), "--candidates", models("colour")]
    else:
        (tmp_path / "v.csv").write_text("id,label\n0,1\n")
        extra = ["--victim-outputs", str(tmp_path / "v.csv"), "--validate", "fgsm"]
    assert _run(tmp_path, models, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "out" / "pick_surrogate.json").exists()


def test_validation_reports_each_score_against_measured_transfer(models, tmp_path, capsys):
    assert _run(tmp_path, models, "--victim", models("victim"), "--validate", "fgsm",
                "--eps", "0.2") == 0
    checked = json.loads((tmp_path / "out" / "pick_surrogate_validation.json").read_text())
    checked = checked["both_correct"]
    assert set(checked["rates"]) == {"a", "b", "c"}
    measured = [r for r in checked["rates"].values() if r is not None and np.isfinite(r)]
    for value in checked["scores"].values():
        tau, (low, high) = value["tau_w"], value["ci"]
        if len(measured) < 3:  # untrained stand-ins: nothing both models classify correctly
            assert tau is None and "ranking needs 3" in value["note"]
        else:
            assert -1 <= tau <= 1 and low <= tau + 1e-12 and tau <= high + 1e-12


def test_validation_is_stored_jobs_a_rerun_crafts_nothing(models, tmp_path):
    from transferability.jobs import ResultStore

    store = tmp_path / "r.sqlite"
    argv = ["--victim", models("victim"), "--validate", "fgsm", "--eps", "0.2",
            "--store", str(store)]
    assert _run(tmp_path, models, *argv) == 0
    with ResultStore(store) as opened:
        records = {r.key: r.finished for r in opened.records(kind="pick_validation")}
    assert len(records) == 3  # one per candidate
    assert _run(tmp_path, models, *argv, out="again") == 0
    with ResultStore(store) as opened:
        assert {r.key: r.finished for r in opened.records(kind="pick_validation")} == records
    first, again = (json.loads((tmp_path / o / "pick_surrogate_validation.json").read_text())
                    for o in ("out", "again"))
    assert first == again
