"""A study is one file: this one defines a small study (its result, job kinds, runner, CLI
options and HTML section), registers it, and finds it in the CLI, the store and the report
with nothing else touched."""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass, field

import pytest

import transferability
from transferability import cli, studies
from transferability._results import Result
from transferability._validation import Integer, Text
from transferability.attacks import AttackSpec
from transferability.html_report import sections, write_report
from transferability.html_report.sections import Section
from transferability.jobs import Job, ResultStore, job_kind, open_store, run_jobs
from transferability.report import format_table
from transferability.studies import Settings, Study, get_study, setting


# ---- the study: everything it needs, in one place -----------------------------------------
@dataclass(frozen=True)
class SquaresResult(Result):
    rows: list[dict]
    settings: dict = field(default_factory=dict)


@job_kind("test_square_of")
def _square_of(config: dict, inputs: dict) -> dict:
    return {"n": config["n"], "square": config["n"] ** 2}


@job_kind("test_squares_study")
def _squares_study(config: dict, inputs: dict) -> dict:
    rows = [inputs[f"n={n}"].value for n in range(1, config["up_to"] + 1)]
    return SquaresResult(rows, dict(config)).to_dict()


@dataclass(frozen=True)
class SquaresSettings(Settings):
    up_to: int = setting(4, Integer(1, 1000), "squares of 1..N")
    target: str = setting("none", Text(), "a label", option=False)


def squares_study(settings: SquaresSettings = SquaresSettings(), *, store=None,
                  cache_dir=None, backend="local", device=None, show_progress=None,
                  **backend_options) -> SquaresResult:
    parts = {f"n={n}": Job("test_square_of", {"n": n}) for n in range(1, settings.up_to + 1)}
    final = Job("test_squares_study", settings.to_dict(), parts, label="squares")
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="squares", backend=backend, device=device,
                       show_progress=show_progress, **backend_options)
    return SquaresResult.from_dict(run.value(final))


def _render(sid: str, result: SquaresResult) -> str:
    return f'<p id="{sid}-sum">sum of squares {sum(r["square"] for r in result.rows)}</p>'


SQUARES = Study("squares", "Squares of the first integers", SquaresResult,
                "test_squares_study", squares_study, SquaresSettings(),
                SquaresSettings(up_to=2),
                help="Squares of 1..N: a study that exists only in the tests.")
#: How it is shown: its report section and its text (``register_section`` at import in a
#: real study file; registered per test by the fixture below).
SQUARES_SECTION = Section(SquaresResult, SQUARES.title, _render,
                          format=lambda result: format_table(result.rows))


# ---- what registering it gives -------------------------------------------------------------
@pytest.fixture
def registered(monkeypatch):
    """The study registered for one test (``register_study`` would keep it for the
    session)."""
    monkeypatch.setitem(studies._STUDIES._items, SQUARES.name, SQUARES)
    monkeypatch.setitem(sections._SECTIONS._items, SquaresResult.__name__, SQUARES_SECTION)
    return SQUARES


def test_the_library_studies_are_registered_with_their_result_types():
    names = [s.name for s in transferability.list_studies()]
    assert names[:5] == ["adv-knowledge", "surrogates", "robust-transfer", "benchmark", "audit"]
    assert get_study("surrogates").result.__name__ == "SurrogateStudyResult"
    with pytest.raises(ValueError, match="study"):
        get_study("nope")
    with pytest.raises(ValueError, match="already registered"):
        studies.register_study(Study("surrogates", "x", SquaresResult, "k", squares_study,
                                     SquaresSettings()))


def test_a_study_in_one_file_reaches_the_cli_the_store_and_the_report(registered, tmp_path,
                                                                       capsys):
    with pytest.raises(SystemExit):
        cli.main(["study", "--help"])
    assert "squares" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["study", "squares", "--help"])
    assert "exists only in the tests" in capsys.readouterr().out

    store_path, out = tmp_path / "r.sqlite", tmp_path / "out"
    assert cli.main(["study", "squares", "--quick", "--up-to", "3", "--store", str(store_path),
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "square" in printed and (out / "squares.json").is_file()
    result = json.loads((out / "squares.json").read_text())
    assert [r["square"] for r in result["rows"]] == [1, 4, 9]  # --up-to over the quick 2

    with ResultStore(store_path) as store:
        kinds = sorted(r.kind for r in store.records(study="squares"))
        assert kinds == ["test_square_of"] * 3 + ["test_squares_study"]
        page = write_report(store, tmp_path / "report.html").read_text()
    assert "Squares of the first integers" in page and "sum of squares 14" in page
    with pytest.raises(SystemExit) as refused:  # its own options are checked like any other
        cli.main(["study", "squares", "--up-to", "0", "--store", str(store_path)])
    assert refused.value.code == 2


# ---- settings: frozen, checked once, replaced by name ---------------------------------------
def test_the_quick_settings_are_the_full_ones_replaced_and_keep_the_attack_defaults():
    from transferability.studies import robust_transfer, surrogates

    full, quick, tiny = surrogates.FULL, surrogates.QUICK, surrogates.TINY
    assert full == surrogates.SurrogateSettings() and full.seeds == (0, 1, 2)
    assert quick.attack.options == {"eps": 0.2, "steps": 20}  # over Gubri's attack
    assert tiny.attack.options == {"eps": 0.2, "steps": 5} and tiny.rhos == quick.rhos
    assert full.attack == surrogates.GUBRI_ATTACK and full.attack.name == "bim"
    assert get_study("surrogates").quick is quick and get_study("surrogates").tiny is tiny
    # lists become tuples; keywords() is what run() takes, to_dict() what JSON takes
    assert full.replace(seeds=[3, 4]).seeds == (3, 4)
    assert full.keywords()["rhos"] == (0.05, 0.1, 0.2, 0.4)
    assert full.to_dict()["rhos"] == [0.05, 0.1, 0.2, 0.4]
    assert full.to_dict()["attack"] == {"name": "bim", "options": {"eps": 0.2, "steps": 50},
                                        "seed": None, "step": "eps/10"}
    assert surrogates.SurrogateSettings.from_dict(json.loads(json.dumps(tiny.to_dict()))) == tiny
    with pytest.raises(dataclasses.FrozenInstanceError):
        full.epochs = 3
    assert robust_transfer.TINY.source_attack == AttackSpec("pgd", {"eps": 0.2})
    assert robust_transfer.QUICK.robust_attack == "pgd"


@pytest.mark.parametrize("settings, field, value", [
    ("surrogates", "seeds", ()), ("surrogates", "seeds", (-1,)), ("surrogates", "rhos", (0,)),
    ("surrogates", "epochs", 1), ("surrogates", "train_per_class", 0),
    ("surrogates", "attack", "nope"), ("surrogates", "attack", 3),
    ("surrogates", "sharpness_samples", 2.5), ("surrogates", "victim_schedule", "linear"),
    ("robust-transfer", "recipes", ("nope",)),
    ("robust-transfer", "radii", (-0.1,)), ("robust-transfer", "robust_attack", "fgsm"),
    ("robust-transfer", "source_attack", {"name": "pgd", "options": {"eps": -1}}),
    ("robust-transfer", "source_attack", AttackSpec("pgd", {"eps": 0.1}, seed=3)),
    ("robust-transfer", "source_attack", {"name": "fgsm", "options": {}}),
    ("robust-transfer", "source_attack", {"eps": 0.1}),
    ("robust-transfer", "tune_epochs", True), ("squares", "up_to", 0)])
def test_a_bad_setting_is_refused_by_name(settings, field, value):
    defaults = SQUARES.full if settings == "squares" else get_study(settings).full
    with pytest.raises(ValueError, match=f"^{field}"):
        defaults.replace(**{field: value})
    with pytest.raises(ValueError, match=f"^{field}"):  # the same rule through the settings
        type(defaults)(**{**defaults.keywords(), field: value})
    with pytest.raises(ValueError, match=r"^epoch: not a setting of \w+Settings"):
        defaults.replace(epoch=2)


def test_the_victims_schedule_is_theirs_alone():
    from transferability.studies import surrogates

    surrogate_spec, victim_spec = surrogates._specs("colour-digits", (0,), 8, 10, (0.05,),
                                                    "cosine")
    assert {m["train"]["schedule"] for m in victim_spec["models"]} == {"cosine"}
    assert {m["train"]["schedule"] for m in surrogate_spec["models"]} == {"step"}
    _, default = surrogates._specs("mnist", (0,), 8, 10, ())  # today's victims, same keys
    assert [m["train"] for m in default["models"]] == [
        {"epochs": 8, "lr": 0.05, "schedule": "step", "batch_size": 64, "seed": 100 + i}
        for i in range(3)]


def test_a_study_takes_settings_not_dicts():
    with pytest.raises(ValueError, match="quick: expected a Settings"):
        Study("x", "x", SquaresResult, "k", squares_study, SquaresSettings(), {"up_to": 2})


@pytest.mark.parametrize("name", [s.name for s in studies.list_studies()])
def test_every_study_runs_as_run_settings_store_backend_device(name):
    """One signature for every study: its settings first, then where it runs and keeps
    its jobs, all by keyword."""
    parameters = inspect.signature(get_study(name).run).parameters
    first, *rest = parameters.values()
    assert first.name == "settings"
    assert {"store", "cache_dir", "backend", "device", "show_progress"} <= {
        p.name for p in rest if p.kind is p.KEYWORD_ONLY}
