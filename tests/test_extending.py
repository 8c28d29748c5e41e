"""Adding an attack, an estimator, a dataset or a study is one file plus its test: the
file ``tests/extension/plugin.py`` adds one of each from outside the package, and each is
found in its registry's listing, the command line's help and (the study) the report."""

from __future__ import annotations

import importlib
import json
import re
import sys

import pytest
import torch

from transferability import cli, list_attacks, list_datasets, list_estimators, list_studies
from transferability.attacks import AttackSpec
from transferability.attacks.registry import _ATTACKS
from transferability.data.registry import _DATASETS
from transferability.estimators.registry import _ESTIMATORS
from transferability.html_report import render_report
from transferability.html_report.sections import _SECTIONS
from transferability.jobs import ResultStore
from transferability.jobs.graph import _KINDS
from transferability.studies import _STUDIES


@pytest.fixture
def plugin():
    """The plugin imported for one test; every registry as it was afterwards (registering
    for the whole session would change what other tests collect)."""
    registries = (_ATTACKS, _DATASETS, _ESTIMATORS, _STUDIES, _SECTIONS, _KINDS)
    saved = [dict(r._items) for r in registries]
    sys.modules.pop("extension.plugin", None)
    yield importlib.import_module("extension.plugin")
    for registry, items in zip(registries, saved, strict=True):
        registry._items.clear()
        registry._items.update(items)
    sys.modules.pop("extension.plugin", None)


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # unwrapped


def _listing(capsys, command) -> str:
    assert cli.main([command]) == 0
    return capsys.readouterr().out


def test_an_attack_from_outside(plugin, capsys):
    assert "plugin-noise" in list_attacks()
    assert "plugin-noise" in _help(capsys, "attack")
    assert "uniform noise in the ε-ball" in _listing(capsys, "attacks")
    x = torch.rand(4, 1, 8, 8)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    adv = AttackSpec("plugin-noise", {"eps": 0.05}, seed=1).create(model)(x, torch.zeros(4).long())
    assert 0 < (adv - x).abs().max() <= 0.05 + 1e-7
    with pytest.raises(ValueError, match="steps: plugin-noise takes one step"):
        AttackSpec("plugin-noise", {"eps": 0.05, "steps": 3})  # its entry says so


def test_an_estimator_from_outside(plugin, capsys):
    from transferability.estimators import score
    from transferability.features import extract

    assert "plugin-margin" in list_estimators("probs")
    assert "plugin-margin" in _help(capsys, "rank")
    assert "Mean gap between the two most probable" in _listing(capsys, "estimators")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 5))
    x, y, _ = plugin._stripes(5)
    value = score("plugin-margin", extract(model, x, y), y)
    with torch.no_grad():
        probs = model(x.flatten(1)).softmax(1).sort(1).values
    assert value == pytest.approx(float((probs[:, -1] - probs[:, -2]).mean()), rel=1e-5)


def test_a_dataset_from_outside(plugin, capsys, tmp_path):
    from transferability.data import load_dataset

    assert "plugin-stripes" in list_datasets()
    assert "horizontal stripes" in _listing(capsys, "datasets")
    train = load_dataset("plugin-stripes", "train")
    assert train.num_classes == 4 and train.class_names[3] == "stripe-3"
    from transferability.data import dataset_from_spec

    spec = dataset_from_spec({"dataset": "plugin-stripes", "n_per_class": 5}, "test")
    assert spec.class_counts().tolist() == [4, 4, 4, 4]  # a fifth of 20 a class held out
    with pytest.raises(ValueError, match="do not apply to dataset 'plugin-stripes'"):
        load_dataset("plugin-stripes", "train", noise=2)


def test_a_study_from_outside(plugin, capsys, tmp_path):
    assert "plugin-count" in [s.name for s in list_studies()]
    shown = _help(capsys, "study", "plugin-count")
    assert "--dataset" in shown and "--times" in shown and "(default plugin-stripes)" in shown
    store, out = tmp_path / "r.sqlite", tmp_path / "out"
    assert cli.main(["study", "plugin-count", "--store", str(store), "--out", str(out)]) == 0
    rows = json.loads((out / "plugin_count.json").read_text())["rows"]
    assert [r["images"] for r in rows] == [20] * 4
    with ResultStore(store) as opened:
        page = render_report(opened)
    assert "Images per class (a plugin&#x27;s study)" in page or "a plugin" in page
    assert "80 images counted" in page
    with pytest.raises(SystemExit) as refused:  # its settings' rules make its options' checks
        cli.main(["study", "plugin-count", "--times", "11"])
    assert refused.value.code == 2
