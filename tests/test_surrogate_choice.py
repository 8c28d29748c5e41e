"""The surrogate-choice study on a small zoo: every model a victim in turn, the scores
checked against measured transfer; stored, rerun from the store, drawn in the report."""

from __future__ import annotations

import math

from transferability.cli import main
from transferability.html_report import format_result, render_report
from transferability.jobs import ResultStore
from transferability.studies.surrogate_choice import (
    QUICK,
    SurrogateChoiceResult,
    run_surrogate_choice,
)

ZOO = """
train: {epochs: 1, batch_size: 64}
models:
  - {name: a, arch: mlp, data: {dataset: digits, n_per_class: 40}, train: {seed: 0}}
  - {name: b, arch: mlp, data: {dataset: digits, n_per_class: 40}, train: {seed: 1}}
  - {name: c, arch: lenet, data: {dataset: digits, n_per_class: 40}, train: {seed: 2}}
  - {name: d, arch: cnn, data: {dataset: digits, n_per_class: 40}, train: {seed: 3}}
"""


def test_every_model_is_a_victim_and_each_score_meets_the_measured_transfer(tmp_path):
    (tmp_path / "zoo.yaml").write_text(ZOO)
    settings = QUICK.replace(zoo=str(tmp_path / "zoo.yaml"), data="digits", per_class=4)
    with ResultStore(tmp_path / "r.sqlite") as store:
        result = run_surrogate_choice(settings, store=store, cache_dir=tmp_path)
        n = len(store)
        again = run_surrogate_choice(settings, store=store, cache_dir=tmp_path)
        assert len(store) == n and again.to_dict() == result.to_dict()  # from the store
        page = render_report(store)
    assert isinstance(result, SurrogateChoiceResult)
    assert sorted({r["victim"] for r in result.rows}) == ["a", "b", "c", "d"]
    rates = result.rates["both_correct"]
    assert len(rates) == 4 and all(len(row) == 4 for row in rates)
    summary = {r["score"]: r for r in result.summary}
    assert summary["params"]["blind"] and not summary["agreement"]["blind"]
    for r in result.summary:  # a mean over victims, inside its interval
        if math.isfinite(r["mean"]) and r["n"] >= 2:
            assert -1 <= r["mean"] <= 1 and r["low"] <= r["mean"] + 1e-12 <= r["high"] + 2e-12
    # a victim's tau is defined where 3 candidates have a measured rate
    defined = [r for r in result.rows if r["score"] == "agreement"
               and r["weighted_tau"] is not None and math.isfinite(r["weighted_tau"])]
    assert summary["agreement"]["n"] == len(defined) >= 1
    assert "Surrogate choice" in page and "target-blind" in format_result(result)


def test_its_options_come_from_its_settings(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["study", "surrogate-choice", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--zoo" in shown and "--per-class" in shown and "--attack" in shown
