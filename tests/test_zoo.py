import pytest
import torch
import yaml

from transferability.model_args import load_models
from transferability.zoo import build_zoo, load_spec

SPEC = {
    "train": {"epochs": 1, "batch_size": 64},
    "models": [
        {"name": "a", "arch": "mlp", "data": {"dataset": "digits", "n_per_class": 20}},
        {"name": "b", "arch": "lenet",
         "data": {"mixture": ["fonts", "animals"], "k": 5, "n_per_class": 10}},
    ],
}


def test_second_build_trains_nothing_and_loads_same_weights(tmp_path):
    first = build_zoo(SPEC, tmp_path)
    assert first.trained == ["a", "b"] and first.cached == []
    second = build_zoo(SPEC, tmp_path)
    assert second.trained == [] and second.cached == ["a", "b"]
    x = torch.rand(4, 1, 28, 28)
    for name in ("a", "b"):
        assert torch.equal(first[name].eval()(x), second[name](x))
    assert second["a"].meta["data"] == SPEC["models"][0]["data"]
    # editing one entry retrains only that one
    edited = {**SPEC, "models": [SPEC["models"][0], {**SPEC["models"][1], "arch": "mlp"}]}
    third = build_zoo(edited, tmp_path)
    assert third.trained == ["b"] and third.cached == ["a"]
    assert set(load_models([str(first.path("a"))])) == {"a"}
    spec_file = tmp_path / "zoo.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    picked = load_models([f"{spec_file}:b"], tmp_path)
    assert list(picked) == ["b"] and torch.equal(picked["b"](x), second["b"](x))
    with pytest.raises(ValueError, match="no model"):
        load_models([f"{spec_file}:zzz"], tmp_path)


def test_feature_cache(tmp_path):
    from transferability.data import load_dataset

    zoo = build_zoo({"models": SPEC["models"][:1], "train": {"epochs": 1}}, tmp_path)
    data = load_dataset("digits", "test")
    out1 = zoo.outputs("a", data, "digits-test")
    out2 = zoo.outputs("a", data, "digits-test")
    assert torch.equal(out1.features, out2.features) and out1.features.shape == (len(data), 128)
    assert len(list((tmp_path / "features").iterdir())) == 1


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown arch 'vgg'"):
        load_spec({"models": [{"name": "a", "arch": "vgg", "data": "mnist"}]})
    with pytest.raises(ValueError, match="duplicate"):
        load_spec({"models": [{"name": "a", "arch": "mlp", "data": "mnist"}] * 2})
    with pytest.raises(ValueError, match="unknown train option"):
        load_spec({"train": {"epoch": 1}, "models": [{"name": "a", "arch": "mlp", "data": "m"}]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_spec(bad)
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hacked']")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_spec(evil)
    assert len(load_spec("demo")) >= 8
