import numpy as np
import pytest
import torch
from torch import nn

from transferability.data import ImageDataset
from transferability.pick_surrogate import read_victim_outputs, score_candidates, victim_outputs


class Lin(nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.ReLU())
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.body(x))


class Band(Lin):
    """Predicts the lit band: right on every blob image."""

    def forward(self, x):
        return torch.stack([x[:, 0, 9 * c:9 * c + 9].mean((1, 2)) for c in range(3)], 1) \
            + 0 * super().forward(x)


@pytest.fixture
def setup(blobs):
    x, _ = blobs
    return x, {f"m{i}": Lin(i) for i in range(3)}, Band(9)


def test_file_path_ranks_like_model_path(setup, blobs, tmp_path):
    x, cands, victim = setup
    v = victim_outputs(victim, x)
    path = tmp_path / "v.csv"
    np.savetxt(path, np.c_[np.arange(len(x))[::-1], v.labels.numpy()[::-1]], fmt="%d",
               delimiter=",", header="id,label", comments="")
    vf = read_victim_outputs(path, ImageDataset(x, blobs[1]))
    assert torch.equal(vf.labels, v.labels)
    a = score_candidates(cands, x, v, estimators=["logme"])
    b = score_candidates(cands, x, vf, estimators=["logme"])
    assert a.ranking("logme") == b.ranking("logme")


def test_agreement_by_hand(setup):
    x, cands, victim = setup
    v = victim_outputs(victim, x)
    s = score_candidates({"self": victim}, x, v, estimators=[])
    assert s.scores["agreement"]["self"] == 1.0


@pytest.mark.parametrize("rows,msg", [("id,label\n0,0\n0,1\n", "duplicated"),
                                      ("id,label\n0,0\n999,1\n", "not in the data"),
                                      ("id,label\n0,7\n1,0\n", "labels outside"),
                                      ("id,label\n0,1\n", "ids missing"),
                                      ("id,logit_0\n0,1\n1,2\n", "logit columns"),
                                      ("name,label\n0,1\n1,2\n", "malformed")])
def test_bad_files(tmp_path, rows, msg):
    path = tmp_path / "v.csv"
    path.write_text(rows)
    with pytest.raises(ValueError, match=f"victim: .*{msg}|{msg}"):
        read_victim_outputs(path, ImageDataset(torch.zeros(2, 1, 4, 4), [0, 2]))


def test_agreement_half_and_affine(setup):
    x, _, victim = setup
    v = victim_outputs(victim, x)

    class Flip(Band):  # band 0 read as band 1: wrong on classes 0 and 1 → agreement 1/3
        def forward(self, x):
            return super().forward(x)[:, [1, 0, 2]]

    s = score_candidates({"self": victim, "flip": Flip(0)}, x, v, estimators=[])
    assert s.scores["agreement"]["flip"] == pytest.approx(1 / 3)
    assert s.scores["affine_fit"]["self"] == pytest.approx(0, abs=1e-6)
    assert s.ranking("agreement") == ["self", "flip"]
    from transferability.html_report import format_result

    assert "agreement" in format_result(s)
    assert type(s).from_dict(s.to_dict()).scores == s.scores


def test_validate_scores():
    from transferability.pick_surrogate import SurrogateScores, validate_scores

    r = SurrogateScores({"a": {"m0": 0.1, "m1": 0.5, "m2": 0.9, "m3": 0.3}}, {})
    v = validate_scores(r, {"m0": 0.2, "m1": 0.4, "m2": 0.8, "m3": 0.1}, n_boot=200)["a"]
    assert -1 <= v["tau_w"] <= 1 and v["ci"][0] <= v["tau_w"] <= v["ci"][1]
    assert v["top1_hit"] and v["regret"] == 0


def test_validate_runs_attack(setup, blobs):
    from transferability.attacks import AttackSpec
    from transferability.pick_surrogate import validate

    x, cands, victim = setup
    y = blobs[1]
    cands = {**cands, "band": Band(1)}
    r = score_candidates(cands, x[::6], victim_outputs(victim, x[::6]), estimators=[])
    out = validate(r, cands, victim, x[::6], y[::6], AttackSpec("fgsm", {"eps": 0.5}),
                   n_boot=100)
    both, every = out["both_correct"], out["all"]
    assert both["rates"]["band"] == 1.0
    assert every["rates"]["band"] <= 1.0 and set(every["rates"]) == set(both["rates"])
    assert not np.isnan(both["scores"]["agreement"]["tau_w"])
    for v in [*both["scores"].values(), *every["scores"].values()]:
        if np.isnan(v["tau_w"]):  # a constant score (params)
            continue
        assert -1 <= v["tau_w"] <= 1
        assert v["ci"][0] - 1e-12 <= v["tau_w"] <= v["ci"][1] + 1e-12


def test_same_family_is_a_baseline_where_the_victim_family_is_known(blobs):
    from torch import nn

    from transferability.pick_surrogate import model_family

    def named(meta):
        m = nn.Sequential(nn.Flatten(), nn.Linear(blobs[0][0].numel(), 3))
        m.meta = meta
        return m

    assert model_family(named({"arch": "resnet"})) == "resnet"
    assert model_family(named({"model": "resnet18"})) == "resnet"
    assert model_family(named({"model": "vit_base_patch16_224"})) == "vit"
    assert model_family(nn.Linear(2, 2)) is None
    x = blobs[0][:12]
    victim = named({"arch": "resnet"})
    cands = {"r": named({"model": "resnet50"}), "v": named({"model": "vit_small"}),
             "plain": nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 3))}
    out = score_candidates(cands, x, victim_outputs(victim, x), estimators=[],
                           victim_family="resnet")
    assert out.scores["same_family"] == {"r": 1.0, "v": 0.0}  # unknown family: no score
    assert "same_family" not in score_candidates(cands, x, victim_outputs(victim, x),
                                                 estimators=[]).scores
