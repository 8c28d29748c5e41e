"""The reference model of the adversarial scores: its name for every kind of target, its
training (early stopping, a budget by data size), its measured accuracy and the rule that
withholds α from a reference that has not learned; thread limits; the rank command's
output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from threadpoolctl import threadpool_info
from torch import nn

from test_ranking import stripes
from transferability._threads import PER_THREAD, limit_threads, threads_for
from transferability._validation import check_name
from transferability.attacks import AttackSpec
from transferability.cli import main
from transferability.estimators.registry import Estimator
from transferability.html_report import format_result
from transferability.models import create_model
from transferability.ranking import rank_sources, reference_accuracy
from transferability.stats import wilson_interval
from transferability.studies.adv_knowledge import reference_epochs, reference_name
from transferability.training import check_fit_options, fit

TARGETS = ["mnist", "colour-digits", "imagefolder:/data/my images/tiny10",
           "imagefolder:/data/tiny10?test_fraction=0.3", "npz:/x/y.npz?test_fraction=0.25",
           "hf:/d/cifar?image=img&label=label", "/tmp/data/folder/", "../rel/data.npz",
           {"dataset": "mnist", "classes": [0, 1]}]


def test_the_reference_name_is_safe_and_stable_for_every_target_kind():
    names = [reference_name(t) for t in TARGETS]
    for target, name in zip(TARGETS, names, strict=True):
        assert check_name(name, "name") == name == reference_name(target)
    assert len(set(names)) == len(names)  # ?k=v options make another reference
    assert names[:2] == ["reference-mnist", "reference-colour-digits"]  # as before
    assert names[2].startswith("reference-imagefolder-data-my-images-tiny10-")
    assert len(names[2]) == len("reference-imagefolder-data-my-images-tiny10-") + 8


def test_wilson_interval_and_the_epoch_budget():
    assert wilson_interval(20, 200) == pytest.approx((0.065670, 0.149406), abs=1e-6)
    assert wilson_interval(81, 263) == pytest.approx((0.255289, 0.366210), abs=1e-6)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert [reference_epochs(n) for n in (100, 600, 10_000, 60_000)] == [50, 50, 25, 5]
    assert check_fit_options({"early_stopping": {"patience": 2}})["early_stopping"] == {
        "patience": 2, "val_fraction": 0.2}
    with pytest.raises(ValueError, match="early_stopping.val_fraction"):
        check_fit_options({"early_stopping": {"val_fraction": 1.5}})


@pytest.fixture(scope="module")
def task():
    return stripes()


def _constant(classes: int = 4) -> nn.Module:
    """A model that predicts class 1 for every image (its logits vary a little): at chance."""
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=classes)
    with torch.no_grad():
        model.head.weight.mul_(1e-3)
        model.head.bias.copy_(torch.arange(classes) == 1)
    return model


def _sources(classes: int = 4) -> dict:
    torch.manual_seed(0)
    return {"a": create_model("mlp", num_classes=classes),
            "b": create_model("lenet", num_classes=classes),
            "c": create_model("cnn", num_classes=classes)}


def test_a_reference_at_chance_gives_no_alpha(task, caplog):
    result = rank_sources(_sources(), task, test=task, estimators=["leep", "alpha1",
                          "gradient_alignment"], reference=_constant(), alpha_per_class=2,
                          attack=AttackSpec("pgd", {"steps": 1}), show_progress=False)
    ref = result.reference
    assert (ref.correct, ref.n, ref.classes) == (40, 160, 4) and not ref.learned
    assert ref.low == pytest.approx(wilson_interval(40, 160)[0]) and ref.low < 0.25
    for row in result.rows:
        assert math.isnan(row["alpha1"]) and math.isnan(row["gradient_alignment"])
        assert np.isfinite(row["leep"])
    notes = {c["estimator"]: c.get("note") for c in result.correlations}
    assert "not above chance (1/4)" in notes["alpha1"] and notes["leep"] is None
    text = format_result(result)
    assert "alpha1, gradient_alignment: n/a, the reference has not learned the target" in text
    assert "held-out accuracy 0.250 [95% CI 0.189, 0.322] (40/160)" in text
    assert "--reference-epochs" in caplog.text and "--reference MODEL" in caplog.text
    again = type(result).from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.reference == ref
    voted = rank_sources(_sources(), task, test=task, estimators=["leep", "alpha1"],
                         reference=_constant(), alpha_per_class=2, ensemble=["leep", "alpha1"],
                         attack=AttackSpec("pgd", {"steps": 1}), show_progress=False)
    notes = {c["estimator"]: c.get("note") for c in voted.correlations}
    assert "not above chance" in notes["ensemble"]  # a vote of withheld scores is withheld


def test_a_reference_that_learned_gives_alpha(task):
    torch.manual_seed(0)
    reference = create_model("mlp", num_classes=4)
    fit(reference, task, epochs=3, batch_size=32, show_progress=False)
    accuracy = reference_accuracy(reference, task)
    assert accuracy.learned and accuracy.low > 0.5 and accuracy.note is None
    result = rank_sources(_sources(), task, estimators=["alpha1"], reference=reference,
                          alpha_per_class=2, attack=AttackSpec("pgd", {"steps": 2}),
                          show_progress=False)
    assert result.reference == accuracy  # measured on train when no held-out data is given
    assert all(0 < r["alpha1"] < math.inf for r in result.rows)
    assert "n/a" not in format_result(result)


def test_estimators_run_under_a_thread_limit_by_size():
    seen = []

    def fn(features, labels):
        seen.append((torch.get_num_threads(),
                     {i["num_threads"] for i in threadpool_info()}))
        return 0.0

    before = torch.get_num_threads()
    estimator = Estimator("probe", fn, "features")
    estimator(torch.zeros(1000, 512), torch.zeros(1000))
    assert seen == [(1, {1})] and torch.get_num_threads() == before
    assert threads_for(PER_THREAD - 1) == 1
    assert threads_for(64 * PER_THREAD) == min(torch.get_num_threads(),
                                               len(__import__("os").sched_getaffinity(0)))
    with limit_threads(0) as n:
        assert n == 1 and {i["num_threads"] for i in threadpool_info()} == {1}


def _image_folder(root, per_class: dict[str, int]):
    """Three classes of 32×32 RGB images, each a noisy colour."""
    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for split, n in per_class.items():
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(colour, 60, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def test_rank_reference_train_on_an_image_folder(tmp_path, capsys):
    data = _image_folder(tmp_path / "my data", {"train": 20, "test": 10})
    (tmp_path / "models.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def small(seed=0):\n    torch.manual_seed(seed)\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 16), nn.ReLU(), "
        "nn.Linear(16, 3))\n"
        "def other():\n    return small(1)\n")
    entry = f"py:{tmp_path / 'models.py'}"
    out = tmp_path / "out"
    argv = ["rank", "--target", f"imagefolder:{data}", "--sources", f"{entry}:small",
            f"{entry}:other", "--estimators", "leep", "alpha1", "--reference", "train",
            "--reference-epochs", "4", "--alpha-per-class", "3", "--steps", "2",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert printed.err.count("job(s) to run") - printed.err.count("zoo:") == 1
    assert "rank: 2 job(s) to run, 0 already in the store" in printed.err
    rank = json.loads((out / "rank.json").read_text())
    ref = rank["reference"]
    assert ref["n"] == 30 and ref["classes"] == 3 and ref["low"] > 1 / 3
    assert "reference: held-out accuracy" in printed.out
    assert all(r["alpha1"] > 0 for r in rank["rows"])
    assert all(isinstance(r["params"], int) for r in rank["rows"])
    params = rank["rows"][0]["params"]
    assert f" {params} " in printed.out and f"{params}.000" not in printed.out


def test_the_study_withholds_alpha_from_a_reference_at_chance(task, tmp_path):
    from transferability.jobs import ResultStore
    from transferability.studies.adv_knowledge import adv_knowledge_study

    sources = {k: v for k, v in _sources().items() if k != "c"}
    with ResultStore(tmp_path / "store.sqlite") as store:
        study = adv_knowledge_study(_constant(), sources, task, task, alpha_per_class=2,
                                    shots=2, repeats=2, attack=AttackSpec("pgd", {"steps": 1}),
                                    matrix_attack=AttackSpec("pgd", {"steps": 1}), store=store,
                                    show_progress=False)
    assert study.reference.correct == 40 and not study.reference.learned
    assert all(math.isnan(r["alpha1"]) and np.isfinite(r["leep"]) for r in study.rows)
    notes = {c["estimator"]: c.get("note") for c in study.correlations}
    assert "not above chance (1/4)" in notes["alpha12"] and notes["leep"] is None
    text = format_result(study)
    assert "alpha1, alpha12" in text and "n/a, the reference has not" in text


def test_a_zoo_entry_stops_early_on_a_validation_split(tmp_path):
    from transferability.zoo import build_zoo

    spec = {"train": {"epochs": 40, "batch_size": 16, "early_stopping": {"patience": 1}},
            "models": [{"name": "m", "arch": "mlp",
                        "data": {"dataset": "digits", "n_per_class": 10}}]}
    model = build_zoo(spec, tmp_path)["m"]
    history = model.meta["history"]
    assert 2 <= len(history) < 40  # stopped once an epoch did not beat the best
    best = max(r["accuracy"] for r in history)
    # the validation split: 2 of each class's 10 train images, so accuracies are k/20
    assert all(abs(r["accuracy"] * 20 - round(r["accuracy"] * 20)) < 1e-9 for r in history)
    assert best > 0.1
