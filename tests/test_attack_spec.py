"""One AttackSpec: a name, options and a seed checked once (one rule for ``eps``), the
caller's defaults overlaid once, built through the registry; the same refusal from the API,
a study's settings and the command line; a study's one default reaches its help and jobs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from transferability import cli, studies
from transferability.adversarial import alpha_attack
from transferability.attacks import PGD, AttackSpec, AutoAttack, create_attack, robust_accuracy
from transferability.models import create_model
from transferability.studies import surrogates
from transferability.training import create_training_method
from transferability.transfer_matrix import transfer_matrix

REFUSED = "^eps: expected a finite number > 0"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("mlp", num_classes=3, image_size=8, in_channels=1).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 8, 8, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])


def test_a_spec_is_checked_once_and_overlays_defaults_once(model, batch):
    spec = AttackSpec("bim", {"steps": 5, "seed": 3})
    assert spec.options == {"steps": 5} and spec.seed == 3  # a seed option is the seed
    over = spec.with_defaults(AttackSpec("bim", {"eps": 0.2, "steps": 50}, seed=1))
    assert over == AttackSpec("bim", {"eps": 0.2, "steps": 5}, 3)  # the spec wins
    assert AttackSpec("bim", {"steps": 5}).with_defaults({"eps": 0.2, "seed": 1}).seed == 1
    assert over.with_options(alpha=0.05).kwargs == {"seed": 3, "eps": 0.2, "steps": 5,
                                                    "alpha": 0.05}
    attack = over.create(model)  # through the registry: bim is PGD without random start
    assert isinstance(attack, PGD) and attack.random_start is False
    assert (attack.eps, attack.steps, attack.seed) == (0.2, 5, 3)
    x, y = batch
    expected = create_attack("bim", model, eps=0.2, steps=5, seed=3)(x, y)
    assert torch.equal(over.factory()(model)(x, y), expected)
    with pytest.raises(ValueError, match="^attack: unknown .*'nope'"):
        AttackSpec("nope")
    with pytest.raises(ValueError, match="^options: expected a dict"):
        AttackSpec("pgd", [("eps", 0.1)])
    with pytest.raises(ValueError, match=r"^seed: expected an integer"):
        AttackSpec("pgd", seed=-1)


@pytest.mark.parametrize("eps", [0, -0.1, float("nan"), float("inf")])
def test_eps_is_refused_by_one_rule_from_every_entry(eps, model, batch, tmp_path):
    x, y = batch
    for make in (lambda: AttackSpec("pgd", {"eps": eps}),
                 lambda: PGD(model, eps=eps),
                 lambda: create_attack("fgsm", model, eps=eps),
                 lambda: AutoAttack(model, "linf", eps),
                 lambda: alpha_attack({"name": "pgd", "options": {"eps": eps}}),
                 lambda: transfer_matrix({"m": model}, {"m": model}, x, y,
                                         attack={"name": "pgd", "options": {"eps": eps}}),
                 lambda: robust_accuracy(model, x, y, eps),
                 lambda: create_training_method("pgd_at", eps=eps),
                 lambda: create_training_method("cartl_fdm", eps=eps),
                 lambda: surrogates.FULL.replace(attack=AttackSpec("bim", {"eps": eps}))):
        with pytest.raises(ValueError, match=REFUSED):
            make()
    assert not list(tmp_path.iterdir())  # refused before any job or file


@pytest.mark.parametrize("command", [
    ["study", "surrogates", "--quick"], ["attack", "--surrogates", "demo", "--victims", "demo",
                                         "--dataset", "digits"],
    ["rank", "--target", "digits", "--sources", "demo"]])
def test_the_command_line_refuses_eps_by_the_same_rule(command, capsys, tmp_path):
    with pytest.raises(SystemExit) as refused:
        cli.main([*command, "--eps", "0", "--out", str(tmp_path / "out")])
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "argument --eps: expected a number > 0 such as 0.031 or 8/255, got '0'" in err[-1]
    assert not (tmp_path / "out").exists()


def test_a_studys_attack_default_lives_in_one_place(monkeypatch, tmp_path, capsys):
    """Change the surrogate study's one default (its settings' spec): the help and the
    jobs of the study command follow it, and the command line lays its options over it."""
    full = surrogates.FULL.replace(attack=AttackSpec("bim", {"eps": 0.125, "steps": 40}))
    quick = surrogates.QUICK.replace(attack=AttackSpec("bim", {"eps": 0.125, "steps": 6}))
    study = dataclasses.replace(studies.get_study("surrogates"), full=full, quick=quick)
    monkeypatch.setitem(studies._STUDIES._items, "surrogates", study)
    with pytest.raises(SystemExit):
        cli.main(["study", "surrogates", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default 0.125)" in shown and "(default 40; --quick 6)" in shown
    assert "default bim" in shown

    graphs = []

    def captured(jobs, store, **kw):  # the graph the study would run; then stop
        graphs.append(jobs[0])
        raise KeyboardInterrupt

    monkeypatch.setattr(surrogates, "run_jobs", captured)
    for extra, expected in (([], {"seed": 0, "alpha": 0.0125, "eps": 0.125, "steps": 6}),
                            (["--steps", "3"], {"seed": 0, "alpha": 0.0125, "eps": 0.125,
                                                "steps": 3})):  # the step: ε/10, its rule
        assert cli.main(["study", "surrogates", "--quick", "--target", "digits",
                         "--store", str(tmp_path / "r.sqlite"), "--cache-dir", str(tmp_path),
                         "--out", str(tmp_path / "out"), *extra]) == 130
        rows = [j for j in graphs[-1].inputs.values() if j.kind == "transfer_row"]
        assert rows and all(j.config["attack"]["name"] == "bim" for j in rows)
        assert all(AttackSpec.of(j.config["attack"]).kwargs == expected for j in rows)
    assert AttackSpec.of(graphs[-1].config["settings"]["attack"]).kwargs == expected
