import pytest
import torch

from transferability.features import forward_with_features
from transferability.models import (
    CheckpointError,
    Classifier,
    Normalize,
    create_model,
    list_models,
    load_checkpoint,
    read_metadata,
    replace_head,
    save_checkpoint,
)

FEATURE_DIMS = {"mlp": 128, "lenet": 84, "cnn": 128, "resnet": 64}


@pytest.mark.parametrize("name", sorted(FEATURE_DIMS))
def test_every_model_has_features_and_head(name):
    model = create_model(name, num_classes=7).eval()
    x = torch.rand(3, 1, 28, 28)
    feats = model.features(x)
    assert feats.shape == (3, FEATURE_DIMS[name]) == (3, model.feature_dim)
    assert torch.allclose(model(x), model.head(feats), atol=1e-6)
    features, logits = forward_with_features(model, x)
    assert torch.equal(features, feats) and torch.equal(logits, model(x))
    assert model(x).shape == (3, 7) and isinstance(model.backbone, torch.nn.Sequential)


@pytest.mark.parametrize("kwargs", [{"in_channels": 3}, {"width": 8}, {"in_channels": 3,
                                                                      "width": 4}])
def test_non_default_models_round_trip(tmp_path, kwargs):
    model = create_model("resnet", num_classes=4, **kwargs).eval()
    x = torch.rand(2, kwargs.get("in_channels", 1), 28, 28)
    assert model(x).shape == (2, 4)
    replace_head(model, 6)  # a re-headed model saves its new head size
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "m.pt"))
    assert loaded.num_classes == 6 and torch.equal(model(x), loaded(x))


def test_registry_lists_and_rejects_unknown():
    assert set(FEATURE_DIMS) <= set(list_models())
    with pytest.raises(ValueError, match="name: unknown value 'vgg'.*cnn"):
        create_model("vgg")


def test_normalize_is_per_channel_affine():
    norm = Normalize([0.5, 0.25], [0.5, 2.0])
    x = torch.ones(1, 2, 2, 2)
    out = norm(x)
    assert torch.allclose(out[0, 0], torch.full((2, 2), 1.0))
    assert torch.allclose(out[0, 1], torch.full((2, 2), 0.375))
    with pytest.raises(ValueError, match="std"):
        Normalize([0.0], [0.0])


def test_replace_head_keeps_backbone():
    model = create_model("cnn", num_classes=10)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    replace_head(model, 3)
    assert model.head.out_features == 3 and model.num_classes == 3
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


def test_checkpoint_round_trip(tmp_path):
    model = create_model("resnet", num_classes=5).eval()
    path = save_checkpoint(model, tmp_path / "m.pt", arch="resnet", dataset="fonts", seed=3,
                           metrics={"acc": 0.5})
    loaded = load_checkpoint(path)
    assert isinstance(loaded, Classifier) and loaded.num_classes == 5
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model(x), loaded(x))
    assert loaded.meta["seed"] == 3 and loaded.meta["metrics"] == {"acc": 0.5}
    assert read_metadata(path)["dataset"] == "fonts"


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickled_payload_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    payload = _Payload()
    payload.marker = str(marker)
    path = tmp_path / "evil.pt"
    torch.save({"format": "transferability-checkpoint-v1", "x": payload}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()


def test_corrupt_and_missing_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a transferability checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(ValueError, match="arch"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x.pt")
