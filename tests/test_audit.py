"""The transfer-attack audit: 8-bit quantisation, stealthiness, both denominators with
intervals, victim families, the ordering verdicts, the store, PNG round trips, the CLI."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from transferability.attacks import create_attack, norms
from transferability.cli import main
from transferability.features import predict
from transferability.html_report import format_result, result_files
from transferability.jobs import ResultStore
from transferability.stealth import ssim, stealth
from transferability.studies.audit import AuditResult, audit

MODELS = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.conv(x))


def net(seed, residual=True):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Block(4) if residual else nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)).eval()


def a(): return net(0)
def b(): return net(1)
def c(): return net(2)
def plain(): return net(3, residual=False)
'''


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    (folder / "models.py").write_text(MODELS)
    import importlib.util
    spec = importlib.util.spec_from_file_location("audit_models", folder / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return folder / "models.py", module


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(12) % 3
    x = 0.3 * torch.rand(12, 1, 8, 8, generator=g)
    for k in range(3):
        x[y == k, :, :, 3 * k:3 * k + 2] += 0.6
    return x, y


# ---- quantisation and stealthiness ----------------------------------------------------------

@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
def test_quantize_stays_on_the_grid_and_in_the_ball(norm, eps):
    g = torch.Generator().manual_seed(0)
    x = torch.round(torch.rand(16, 3, 6, 6, generator=g) * 255) / 255
    x_adv = norms.clip(x, x + 0.2 * torch.randn(x.shape, generator=g), eps, norm)
    q = norms.quantize(x, x_adv, eps, norm)
    assert torch.equal(q, torch.round(q * 255) / 255)
    assert ((q - x_adv).abs() <= 1 / 255 + 1e-7).all()
    norms.check_bound(x, q, eps, norm)
    # 0.05 is not a multiple of 1/255: plain rounding leaves the ball, quantize does not
    plain = torch.round(x_adv * 255) / 255
    with pytest.raises(ValueError, match="x_adv: a perturbation of .* exceeds eps"):
        norms.check_bound(x, plain, eps, norm)


def test_ssim_hand_computed_and_stealth():
    a = torch.full((1, 1, 11, 11), 0.2, dtype=torch.float64)
    b = torch.full((1, 1, 11, 11), 0.6, dtype=torch.float64)
    c1 = 0.01 ** 2  # constant images: luminance term only
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    assert ssim(a, b).item() == pytest.approx(expected, rel=1e-9)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    more = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert (ssim(x, more) < ssim(x, noisy)).all() and (ssim(x, noisy) < 1).all()
    assert torch.allclose(ssim(x, noisy), ssim(noisy, x))
    s = stealth(x, noisy)
    d = (noisy - x).double().flatten(1)
    assert torch.allclose(s["l2"], d.norm(dim=1)) and torch.allclose(s["linf"], d.abs().amax(1))


# ---- the audit ---------------------------------------------------------------------------------

def test_audit_counts_denominators_orderings_and_png(zoo, images, tmp_path, request):
    _, m = zoo
    x, y = images
    surrogates = {"a": m.a(), "b": m.b()}
    victims = {"c": m.c(), "plain": m.plain()}
    kw = dict(shared={"eps": 0.1, "steps": 2}, families={"plain": "defended"},
              targeted_steps=2, n_boot=200, show_progress=False)
    store = ResultStore(tmp_path / "r.sqlite")
    request.addfinalizer(store.close)  # no WAL checkpoint later, in a neighbour's test
    result = audit(surrogates, victims, x, y, ["mifgsm", "mi-di", "sgm"], store=store, **kw)

    # one independent cell: mifgsm on "a", quantised, shown to "c"
    xq = torch.round(x * 255) / 255
    x_adv = norms.quantize(xq, create_attack("mifgsm", surrogates["a"], eps=0.1, steps=2,
                                             seed=0)(xq, y), 0.1, "linf")
    fooled = predict(victims["c"], x_adv).argmax(1) != y
    both = ((predict(surrogates["a"], xq).argmax(1) == y)
            & (predict(victims["c"], xq).argmax(1) == y))
    row = next(r for r in result.rows if (r["attack"], r["surrogate"], r["victim"])
               == ("mifgsm", "a", "c"))
    assert row["fooled"] == int(fooled.sum()) and row["both_correct"] == int(both.sum())
    assert row["fooled_both_correct"] == int((fooled & both).sum())
    assert row["rate_all"] == pytest.approx(fooled.float().mean().item())
    assert row["linf"] <= 0.1 + 1e-9 and 0 < row["ssim"] <= 1
    for r in result.rows:
        for p in ("all", "both_correct"):
            if r[f"rate_{p}"] is not None:
                assert r[f"low_{p}"] <= r[f"rate_{p}"] + 1e-12 <= r[f"high_{p}"] + 2e-12
    # 3 attacks × 2 surrogates × (2 victims + white box) + the ensemble's mifgsm
    assert len(result.rows) == 3 * 2 * 3 + 3
    assert {r["family"] for r in result.families} == {"cnn", "defended", "white box"}
    assert {r["attack"] for r in result.families if r["family"] == "cnn"} == {
        "mi-di", "mifgsm", "mifgsm-ensemble", "sgm"}
    ranked = result.ranking("cnn", "all")
    rates = {r["attack"]: r["rate_all"] for r in result.families if r["family"] == "cnn"}
    assert [rates[a] for a in ranked] == sorted(rates.values(), reverse=True)
    statements = " | ".join(result.claims)
    assert "mi-di > mifgsm" in statements and "ensemble surrogate" in statements
    assert "targeted logit loss > targeted CE" in statements
    assert all(v["verdict"] in ("holds", "does not hold", "inconclusive") for v in result.verdicts)
    assert {r["loss"] for r in result.targeted} == {"logit", "ce"}

    # the store: a second run computes nothing and gives the same tables
    rerun = audit(surrogates, victims, x, y, ["mifgsm", "mi-di", "sgm"], store=store, **kw)
    assert rerun.to_dict() == result.to_dict()
    # the HTML report carries the attack-by-family table and the verdicts
    from transferability.html_report import write_report
    page = write_report(store, tmp_path / "report.html").read_text()
    assert "Transfer-attack audit" in page and "-families" in page
    assert "mi-di &gt; mifgsm" in page or "mi-di > mifgsm" in page
    # PNG files hold exactly the quantised images: the same counts when read back
    png = audit(surrogates, victims, x, y, ["mifgsm"], save_png=tmp_path / "png",
                ensemble=False, targeted_attack=None, **kw)
    assert len(list((tmp_path / "png").rglob("*.png"))) == 2 * len(x)
    same = {(r["surrogate"], r["victim"]): r["fooled"] for r in result.rows
            if r["attack"] == "mifgsm"}
    assert all(same[r["surrogate"], r["victim"]] == r["fooled"] for r in png.rows)
    # files: CSV, one heatmap per attack; the JSON round-trips
    files = result_files(result, tmp_path)
    assert {f.name for f in files} >= {"audit_rows.csv", "audit_families.csv", "heatmap_sgm.png"}
    again = AuditResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    assert "transfer success by attack and victim family" in format_result(result)


def test_audit_bad_input_before_work(zoo, images, tmp_path):
    _, m = zoo
    x, y = images
    args = ({"p": m.plain()}, {"c": m.c()}, x, y)
    with pytest.raises(ValueError, match="blocks: Sequential has no residual blocks"):
        with ResultStore(tmp_path / "r.sqlite") as store:
            audit(*args, ["sgm"], shared={"eps": 0.1}, store=store)
    with pytest.raises(ValueError, match="layer: 'nope' is not a module"):
        audit(*args, {"ila": {"layer": "nope"}}, shared={"eps": 0.1})
    with pytest.raises(ValueError, match="attack: cannot build 'mifgsm'.*'decay_rate'"):
        audit(*args, {"mifgsm": {"decay_rate": 1}}, shared={"eps": 0.1})
    with pytest.raises(ValueError, match="families: 'zz' is not a victim"):
        audit(*args, ["mifgsm"], shared={"eps": 0.1},
              families={"zz": "cnn"})
    with pytest.raises(ValueError, match="shared: needs 'eps'"):
        audit(*args, ["mifgsm"], shared={"steps": 2})
    assert not (tmp_path / "r.sqlite").exists()


# ---- the command line --------------------------------------------------------------------------

def _protocol(tmp_path, models, attacks: str, surrogate: str = "a") -> str:
    text = textwrap.dedent(f"""\
        surrogates: ["py:{models}:{surrogate}", "py:{models}:b"]
        victims:
          - {{model: "py:{models}:c", family: cnn}}
          - {{model: "py:{models}:plain", family: defended}}
        data: {{dataset: {{dataset: digits, classes: [0, 1, 2]}}, split: test, n_per_class: 2}}
        eps: 0.1
        steps: 2
        n_boot: 100
        targeted: {{attack: mifgsm, steps: 2}}
        attacks: {attacks}
        """)
    path = tmp_path / f"protocol-{surrogate}.yaml"
    path.write_text(text)
    return str(path)


def test_cli_audit_runs_and_refuses_bad_input(zoo, tmp_path, capsys):
    models, _ = zoo
    cache, out = str(tmp_path / "cache"), tmp_path / "out"
    good = _protocol(tmp_path, models, "{mifgsm: {}, mi-di: {}}")
    assert main(["audit", "--protocol", good, "--out", str(out), "--cache-dir", cache]) == 0
    printed = capsys.readouterr().out
    assert "transfer success by attack and victim family" in printed and "mi-di > mifgsm" in printed
    assert (out / "heatmap_mi-di.png").exists() and (out / "audit_families.csv").exists()

    bad = tmp_path / "bad-out"
    cases = [("{mifgsm: {decay_rate: 1}}", "attack: cannot build 'mifgsm'"),
             ("{fia: {layer: nope}}", "layer: 'nope' is not a module"),
             ("{sgm: {}}", "has no residual blocks")]
    for attacks, words in cases:
        path = _protocol(tmp_path, models, attacks, surrogate="plain")
        assert main(["audit", "--protocol", path, "--out", str(bad), "--cache-dir", cache]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert main(["audit", "--protocol", good, "--save-png", str(blocked / "png"),
                 "--cache-dir", cache, "--out", str(bad)]) == 2
    assert "--save-png" in capsys.readouterr().err
    assert main(["audit", "--protocol", good, "--only", "bsr", "--cache-dir", cache,
                 "--out", str(bad)]) == 2
    assert "--only: 'bsr' is not in the protocol" in capsys.readouterr().err
    assert not list(bad.glob("*"))
