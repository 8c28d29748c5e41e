"""The transfer matrix, checked by hand on two linear models of 2-pixel images.

Images are 1×1×2 (pixels a, b). Model A predicts class 0 iff a > b; model B iff a > 0.5.
FGSM with ε = 0.1 moves (a, b) by (∓0.1, ±0.1) on A and a by ∓0.1 on B (B ignores b), so
every flip below can be worked out on paper:

    #  (a, b)      y   A clean  B clean  A-adv: A  B    B-adv: A  B
    1  (.90, .10)  0   ok       ok       (.8,.2) ok ok  (.8,.1) ok ok
    2  (.55, .40)  0   ok       ok       (.45,.5) ✗  ✗  (.45,.4) ok ✗
    3  (.65, .70)  0   ✗        ok       (.55,.8) ✗ ok  (.55,.7) ✗ ok
    4  (.30, .20)  1   ✗        ok       (.4,.1)  ✗ ok  (.4,.2)  ✗ ok
    5  (.20, .25)  1   ok       ok       (.3,.15) ✗ ok  (.3,.25) ✗ ok
    6  (.45, .90)  1   ok       ok       (.55,.8) ok ✗  (.55,.9) ok ✗
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from transferability.attacks import FGSM, PGD, AttackSpec
from transferability.transfer_matrix import TransferMatrix, transfer_matrix

X = torch.tensor([[.90, .10], [.55, .40], [.65, .70], [.30, .20], [.20, .25], [.45, .90]])
X = X.view(6, 1, 1, 2)
Y = torch.tensor([0, 0, 0, 1, 1, 1])

FGSM_01 = {"eps": 0.1}


def linear(weight, bias) -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(weight))
        model[1].bias.copy_(torch.tensor(bias))
    return model


@pytest.fixture
def models():
    a = linear([[10.0, -10.0], [-10.0, 10.0]], [0.0, 0.0])
    b = linear([[10.0, 0.0], [-10.0, 0.0]], [-5.0, 5.0])
    return a, b


@pytest.fixture
def matrix(models):
    a, b = models
    return transfer_matrix({"A": a, "B": b}, {"A": a, "B": b}, X, Y, AttackSpec("fgsm", FGSM_01),
                           batch_size=4, show_progress=False)


def test_counts_by_hand(matrix):
    assert matrix.n == 6
    assert matrix.clean_correct == {"A": 4, "B": 6}
    # rows: surrogate A, B; columns: victim A, B
    np.testing.assert_array_equal(matrix.fooled, [[4, 2], [3, 2]])
    np.testing.assert_array_equal(matrix.both_correct, [[4, 4], [4, 6]])
    np.testing.assert_array_equal(matrix.fooled_both_correct, [[2, 2], [1, 2]])
    np.testing.assert_allclose(matrix.rates("all"), [[4 / 6, 2 / 6], [3 / 6, 2 / 6]])
    np.testing.assert_allclose(matrix.rates("both_correct"), [[2 / 4, 2 / 4], [1 / 4, 2 / 6]])
    np.testing.assert_array_equal(matrix.white_box_fooled, [4, 2])
    np.testing.assert_array_equal(matrix.white_box_fooled_correct, [2, 2])
    np.testing.assert_allclose(matrix.white_box_rates(), [2 / 4, 2 / 6])
    np.testing.assert_allclose(matrix.white_box_rates("all"), np.diag(matrix.rates("all")))


def test_white_box_kept_for_surrogates_that_are_not_victims(models):
    a, b = models
    m = transfer_matrix({"A": a}, {"B": b}, X, Y, AttackSpec("fgsm", FGSM_01), show_progress=False)
    np.testing.assert_array_equal(m.fooled, [[2]])
    np.testing.assert_array_equal(m.white_box_fooled, [4])
    rows = m.to_records()
    assert [(r["surrogate"], r["victim"], r["white_box"]) for r in rows] == [
        ("A", "B", False), ("A", "A", True)]
    assert rows[1]["both_correct"] == 4 and rows[1]["fooled_both_correct"] == 2
    assert rows[0]["rate_both_correct"] == 0.5 and rows[0]["rate_all"] == pytest.approx(1 / 3)


def test_examples_crafted_once_per_surrogate(models):
    a, b = models
    calls = []

    def factory(model):
        attack = FGSM(model, eps=0.1)

        def counted(x, y):
            calls.append((id(model), len(x)))
            return attack(x, y)
        return counted

    victims = {"A": a, "B": b, "A2": linear([[10.0, -10.0], [-10.0, 10.0]], [0.0, 0.0])}
    m = transfer_matrix({"A": a, "B": b}, victims, X, Y, factory, batch_size=4,
                        show_progress=False)
    assert calls == [(id(a), 4), (id(a), 2), (id(b), 4), (id(b), 2)]
    np.testing.assert_array_equal(m.fooled[:, 2], m.fooled[:, 0])  # A2 is a copy of A


def test_batch_size_does_not_change_counts(models, matrix):
    a, b = models
    m = transfer_matrix({"A": a, "B": b}, {"A": a, "B": b}, X, Y, AttackSpec("fgsm", FGSM_01),
                        batch_size=1, show_progress=False)
    assert m.to_dict() == matrix.to_dict()


def test_json_round_trip(matrix, tmp_path):
    path = matrix.to_json(tmp_path / "out" / "m.json")
    back = TransferMatrix.from_json(path)
    assert back.to_dict() == matrix.to_dict()
    np.testing.assert_array_equal(back.rates(), matrix.rates())
    assert back.attack.startswith("FGSM(eps=0.1")


def test_csv_matches_records(matrix, tmp_path):
    path = matrix.to_csv(tmp_path / "m.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    records = matrix.to_records()
    assert len(rows) == len(records) == 4
    for row, rec in zip(rows, records, strict=True):
        assert row["surrogate"] == rec["surrogate"] and row["victim"] == rec["victim"]
        assert int(row["fooled"]) == rec["fooled"]
        assert int(row["both_correct"]) == rec["both_correct"]
        assert float(row["rate_both_correct"]) == pytest.approx(rec["rate_both_correct"])


def test_frame(matrix):
    pd = pytest.importorskip("pandas")
    frame = matrix.to_frame()
    assert isinstance(frame, pd.DataFrame) and frame.shape == (4, 10)
    assert frame.set_index(["surrogate", "victim"]).loc[("B", "A"), "fooled_both_correct"] == 1


def test_plot_writes_png(matrix, tmp_path):
    path = matrix.plot(tmp_path / "heat.png", protocol="all")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_str_shows_rates_and_counts(matrix):
    text = str(matrix)
    assert "0.250 (1/4)" in text and "0.333 (2/6)" in text  # B→A and B→B, both correct
    assert "0.500 (3/6)" in text and "white-box" in text and "'all'" in text


def test_with_pgd_on_zoo_models():
    """A smoke run through the registry with an L2 PGD and seeds on real architectures."""
    from transferability.models import create_model

    torch.manual_seed(0)
    s, v = create_model("mlp", 3, image_size=16, hidden=16), create_model("lenet", 3)
    x, y = torch.rand(5, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1])
    kw = {"eps": 1.0, "norm": "l2", "steps": 2, "seed": 0}
    m1 = transfer_matrix({"s": s}, {"v": v, "s": s}, x, y, AttackSpec("pgd", kw),
                         batch_size=2, show_progress=False)
    m2 = transfer_matrix({"s": s}, {"v": v, "s": s}, x, y, AttackSpec("pgd", kw),
                         batch_size=2, show_progress=False)
    with pytest.raises(ValueError, match="cannot build 'pgd'.*batch_size"):
        transfer_matrix({"s": s}, {"v": v}, x, y, AttackSpec("pgd", {"eps": 0.1, "batch_size": 2}))
    assert m1.to_dict() == m2.to_dict()
    assert m1.fooled.shape == (1, 2) and "PGD(eps=1.0, norm='l2'" in m1.attack


def test_bad_input(models):
    a, b = models
    with pytest.raises(ValueError, match="victims: name 'A'"):
        transfer_matrix({"A": a}, {"A": b}, X, Y, AttackSpec("fgsm", FGSM_01))
    with pytest.raises(ValueError, match="untargeted"):
        transfer_matrix({"A": a}, {"B": b}, X, Y,
                        AttackSpec("fgsm", {"eps": 0.1, "targeted": True}))
    with pytest.raises(ValueError, match="attack: expected an AttackSpec, an attack name"):
        transfer_matrix({"A": a}, {"B": b}, X, Y, PGD(a, eps=0.1))
    with pytest.raises(ValueError, match="attack: unknown attack 'nope'"):
        transfer_matrix({"A": a}, {"B": b}, X, Y, "nope")
    with pytest.raises(ValueError, match="y: labels go up to 2"):
        transfer_matrix({"A": a}, {"B": b}, X, Y * 2, AttackSpec("fgsm", {"eps": 0.1}))
    with pytest.raises(ValueError, match="x: values must lie in"):
        transfer_matrix({"A": a}, {"B": b}, X + 1, Y, AttackSpec("fgsm", {"eps": 0.1}))
    with pytest.raises(ValueError, match="surrogates: expected a non-empty mapping"):
        transfer_matrix({}, {"B": b}, X, Y, AttackSpec("fgsm", FGSM_01))
    with pytest.raises(ValueError, match="protocol"):
        transfer_matrix({"A": a}, {"B": b}, X, Y, AttackSpec("fgsm", FGSM_01),
                        show_progress=False).rates("x")


def test_weak_surrogates_are_flagged_everywhere(tmp_path):
    import warnings

    torch.manual_seed(0)
    saturated = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    with torch.no_grad():
        saturated[1].weight.mul_(2000)
    healthy = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    y = saturated(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = transfer_matrix({"sat": saturated, "ok": healthy}, {"sat": saturated, "ok": healthy},
                            x, y, AttackSpec("pgd", {"eps": 0.3, "steps": 5,
                                                         "random_start": False}),
                            show_progress=False)
    rates = m.white_box_rates()
    assert rates[0] < 0.9 <= rates[1]
    assert m.weak_surrogates() == ["sat"]
    assert "sat (weak)" in m.format() and "weak surrogates" in m.format()
    records = {(r["surrogate"], r["victim"]): r for r in m.to_records()}
    assert records[("sat", "ok")]["weak_surrogate"] and not records[("ok", "sat")]["weak_surrogate"]
    assert m.to_dict()["weak_surrogates"] == ["sat"]
    assert "weak_surrogate" in (m.to_csv(tmp_path / "m.csv")).read_text().splitlines()[0]


def test_quantize_counts_what_8_bit_images_do(models):
    """With ``quantize`` every adversarial example a victim sees is on the 8-bit grid and in
    the ε-ball: the counts equal crafting, rounding (norms.quantize) and predicting by hand."""
    from transferability.attacks import FGSM, norms

    a, b = models
    x = torch.round(X * 255) / 255
    m = transfer_matrix({"A": a}, {"B": b}, X, Y, AttackSpec("fgsm", {"eps": 0.3}),
                        quantize=True, show_progress=False)
    adv = norms.quantize(x, FGSM(a, 0.3)(x, Y), 0.3, "linf")
    assert torch.equal(adv, torch.round(adv * 255) / 255)
    assert m.fooled[0, 0] == int((b(adv).argmax(1) != Y).sum())
    assert m.white_box_fooled[0] == int((a(adv).argmax(1) != Y).sum())
