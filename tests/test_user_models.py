"""Any nn.Module works: users' VGG-, timm- and torchvision-shaped models through features,
ranking, α, transfer matrices and the CLI (``py:FILE.py:FUNCTION`` entry points)."""

import json
from pathlib import Path

import pytest
import torch

import user_models as um
from transferability.adversarial import alpha
from transferability.attacks import AttackSpec
from transferability.cli import main
from transferability.data import load_dataset, per_class
from transferability.features import extract, forward_with_features, with_head
from transferability.models import create_model
from transferability.ranking import rank_sources, reference_accuracy
from transferability.training import fit
from transferability.transfer_matrix import transfer_matrix

HERE = Path(__file__).parent
ENTRY = f"py:{HERE / 'user_models.py'}"


@pytest.fixture(scope="module")
def digits():
    return per_class(load_dataset("digits", "train"), 8)


def test_default_features_are_the_input_of_the_last_linear_called(digits):
    x = digits.x[:5]
    vgg, timm, fc = um.vgg_like(), um.timm_like(), um.fc_like()
    with torch.no_grad():
        expected = {
            "vgg": vgg.classifier[:2](vgg.features(x).flatten(1)),
            "timm": timm.forward_head(timm.forward_features(x), pre_logits=True),
            "fc": fc.body(x),
        }
        for name, model in {"vgg": vgg, "timm": timm, "fc": fc}.items():
            out = extract(model, x)
            assert torch.equal(out.features, expected[name]), name
            assert torch.equal(out.logits, model(x)), name  # one pass gave both
    assert extract(vgg, x).features.shape == (5, 128)


def test_choosing_a_layer_by_name(digits):
    x, vgg = digits.x[:4], um.vgg_like()
    with torch.no_grad():
        conv = vgg.features(x).flatten(1)
        first = vgg.classifier[0](conv)
    assert torch.equal(extract(vgg, x, layer="classifier.0").features, first)  # pre-ReLU
    assert torch.equal(extract(vgg, x, layer="classifier.0", layer_input=True).features, conv)
    assert torch.equal(extract(vgg, x, layer="features").features, conv)
    with pytest.raises(ValueError, match="layer: 'nope' is not a module"):
        extract(vgg, x, layer="nope")
    with pytest.raises(ValueError, match="layer="):
        extract(um.no_linear(), x)
    assert extract(um.no_linear(), x, layer="net.0").features.shape == (4, 10)


def test_features_keep_gradients_and_with_head_swaps_the_head(digits):
    x, vgg = digits.x[:3], um.vgg_like()
    features, logits = forward_with_features(vgg, x)
    features.sum().backward()
    assert vgg.classifier[0].weight.grad is not None
    head = torch.nn.Linear(128, 3)
    new = with_head(vgg, head)
    with torch.no_grad():
        assert torch.equal(new(x), head(extract(vgg, x).features))
    assert new.source is vgg  # shared, not copied or modified


def test_rank_alpha_and_transfer_matrix_on_users_models(digits):
    reference = create_model("mlp")  # trained until it is above chance: α needs that
    fit(reference, digits, epochs=20, batch_size=16, show_progress=False)
    assert reference_accuracy(reference, digits).learned
    sources = {"vgg": um.vgg_like(), "timm": um.timm_like(), "fc": um.fc_like()}
    result = rank_sources(sources, digits, estimators=["logme", "leep", "h_score", "alpha1"],
                          reference=reference, alpha_per_class=2,
                          attack=AttackSpec("pgd", {"steps": 2}), show_progress=False)
    assert [r["source"] for r in result.rows] == ["vgg", "timm", "fc"]
    for row in result.rows:
        assert all(torch.isfinite(torch.tensor(row[e])) for e in result.estimators)
        assert row["leep"] <= 0 and row["alpha1"] > 0
    res = alpha(reference, sources["vgg"], digits.x[:20], digits.y[:20],
                attack=AttackSpec("pgd", {"steps": 2}))
    assert res.alpha1 == pytest.approx(
        [r for r in result.rows if r["source"] == "vgg"][0]["alpha1"], rel=0.5)
    matrix = transfer_matrix({"reference": reference}, sources, digits.x[:30], digits.y[:30],
                             attack=AttackSpec("pgd", {"eps": 0.3, "steps": 3}),
                             show_progress=False)
    assert matrix.fooled.shape == (1, 3) and matrix.n == 30


def test_cli_rank_and_attack_with_entry_points(tmp_path, capsys):
    sources = [f"{ENTRY}:vgg_like", f"{ENTRY}:timm_like", f"{ENTRY}:fc_like"]
    out = tmp_path / "rank"
    assert main(["rank", "--target", "digits", "--sources", *sources, "--estimators", "logme",
                 "leep", "--out", str(out)]) == 0
    rows = json.loads((out / "rank.json").read_text())["rows"]
    assert [r["source"] for r in rows] == ["vgg_like", "timm_like", "fc_like"]
    out = tmp_path / "attack"
    assert main(["attack", "--surrogates", sources[0], "--victims", *sources, "--dataset",
                 "digits", "--n-per-class", "3", "--eps", "0.2", "--steps", "2",
                 "--out", str(out)]) == 0
    matrix = json.loads((out / "transfer_matrix.json").read_text())
    assert matrix["victims"] == ["vgg_like", "timm_like", "fc_like"]
    # the surrogate given again as a victim is the same model: its cell is white-box
    assert matrix["white_box_fooled"][0] == matrix["fooled"][0][0]
    assert main(["probe", "--target", "digits", "--sources", sources[0], "--feature-layer",
                 "classifier.0", "--shots", "3"]) == 0
    assert "vgg_like" in capsys.readouterr().out
