"""Every study's parameters are declared once (``setting(default, rule, help)``): the
invalid-input tests of every setting and every ``study NAME`` option are generated here
from those declarations, so a new study or setting is covered without a line of test."""

from __future__ import annotations

import math

import pytest

import transferability  # noqa: F401  (registers every study)
from transferability import cli
from transferability._validation import (
    Each,
    Flag,
    Integer,
    OneOf,
    Optional,
    Positive,
    Seed,
    Table,
    Text,
)
from transferability.attacks import AttackRule, AttackSpec
from transferability.studies import list_studies


def _declared():
    for study in list_studies():
        for f in type(study.full).declared():
            yield study, f


def _bad_settings():
    for study, f in _declared():
        for bad in f.metadata["rule"].invalid():
            yield pytest.param(study, f.name, bad, id=f"{study.name}-{f.name}-{bad!r}")


def _bad_options():
    """(study, option, words) for each refused value that can be written on the command
    line: the words of a bad value the rule refuses once parsed."""
    for study, f in _declared():
        rule = f.metadata["rule"]
        if not f.metadata["option"] or isinstance(rule, Flag | AttackRule):
            continue
        option = "--" + f.name.replace("_", "-")
        for bad in rule.invalid():
            words = [str(v) for v in bad] if isinstance(bad, tuple) else [str(bad)]
            if not words and rule.nargs != "+":
                continue
            if words and not _refused(rule, option, words):
                continue  # e.g. 3 as a word is a valid text
            yield pytest.param(study, option, words, id=f"{study.name}{option}={words}")


def _refused(rule, option, words) -> bool:
    convert = rule.arg_type(option)
    try:
        values = [convert(w) for w in words]
        rule.check(values if rule.nargs == "+" else values[0], option)
    except Exception:  # noqa: BLE001  (argparse's or the rule's refusal)
        return True
    return False


@pytest.mark.parametrize(("study", "name", "bad"), list(_bad_settings()))
def test_every_declared_setting_refuses_its_invalid_values_by_name(study, name, bad):
    with pytest.raises(ValueError, match=f"^{name}"):
        study.full.replace(**{name: bad})


@pytest.mark.parametrize(("study", "option", "words"), list(_bad_options()))
def test_every_study_option_refuses_its_invalid_values_before_any_work(study, option, words,
                                                                        capsys, tmp_path):
    with pytest.raises(SystemExit) as refused:
        cli.main(["study", study.name, option, *words, "--store", str(tmp_path / "r.sqlite")])
    assert refused.value.code == 2
    assert option in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()  # nothing ran


def test_every_declared_setting_is_an_option_of_its_study_with_its_defaults(capsys):
    for study, f in _declared():
        if not f.metadata["option"] or isinstance(f.metadata["rule"], AttackRule):
            continue
        with pytest.raises(SystemExit):
            cli.main(["study", study.name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--" + f.name.replace("_", "-") in text, (study.name, f.name)


def test_the_options_given_replace_the_settings_and_keep_the_rest():
    from transferability.studies import get_study

    study = get_study("surrogates")
    args = cli.build_parser().parse_args(["study", "surrogates", "--quick", "--seeds", "4", "5",
                                          "--rhos", "8/255", "--epochs", "3", "--eps", "0.1"])
    settings = cli.study.study_settings(args, study)
    assert settings == study.quick.replace(seeds=(4, 5), rhos=(8 / 255,), epochs=3,
                                           attack=study.quick.attack.with_options(eps=0.1))


@pytest.mark.parametrize(("rule", "value", "expected"), [
    (Integer(0, 10), 10, 10), (Seed(), 2**32 - 1, 2**32 - 1), (Positive(), "8", 8.0),
    (Positive(allow_zero=True), 0, 0.0), (OneOf("a", "b"), "b", "b"), (Text(), "x", "x"),
    (Flag(), True, True), (Each(Integer()), [1, 2], (1, 2)), (Optional(Integer()), None, None),
    (Table(min_len=1), {"a": 1}, {"a": 1}),
    (AttackRule(AttackSpec("pgd", {"eps": 0.1})), "bim", AttackSpec("bim", {"eps": 0.1})),
    (AttackRule(), {"name": "pgd", "options": {"eps": 0.2}, "seed": 3},
     AttackSpec("pgd", {"eps": 0.2}, 3))])
def test_each_rule_normalises_what_it_accepts(rule, value, expected):
    assert rule.check(value, "x") == expected


def test_a_rule_reads_the_command_line_as_written():
    assert Positive().arg_type("--eps")("8/255") == 8 / 255
    assert Each(Seed()).arg_type("--seeds")("7") == 7
    with pytest.raises(Exception, match="expected a finite number > 0"):
        Positive().arg_type("--eps")("0")
    assert math.isinf(Positive().invalid()[1])


def test_every_old_spelling_is_in_one_table_and_read_with_a_warning(capsys, recwarn):
    from transferability._deprecated import SPELLINGS

    assert all(s.removed_in for s in SPELLINGS)
    parser = cli.build_parser()
    args = parser.parse_args(["study", "robust-transfer", "--eps", "8/255"])
    assert args.radii == [8 / 255]
    args = parser.parse_args(["audit", "--attacks", "bsr", "--n-per-class", "3"])
    assert (args.only, args.attack_per_class) == (["bsr"], 3)
    args = parser.parse_args(["rank", "--target", "digits", "--sources", "demo",
                              "--n-per-class", "5"])
    assert args.alpha_per_class == 5
    warned = [str(w.message) for w in recwarn if w.category is FutureWarning]
    assert any("'--eps' is now '--radii'" in m and "removed in" in m for m in warned)
    with pytest.raises(SystemExit):
        cli.main(["study", "robust-transfer", "--help"])
    shown = capsys.readouterr().out
    assert "--radii" in shown and "--eps" not in shown  # the old spelling is not offered
