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



def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown arch 'vgg'"):
        load_spec({"models": [{"name": "a", "arch": "vgg", "data": "mnist"}]})
    with pytest.raises(ValueError, match="duplicate"):
        load_spec({"models": [{"name": "a", "arch": "mlp", "data": "mnist"}] * 2})
    with pytest.raises(ValueError, match="unknown training option"):
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


def test_names_are_checked_before_any_training(tmp_path):
    bad = {"models": [SPEC["models"][0], {**SPEC["models"][1], "name": "x" * 300}]}
    with pytest.raises(ValueError, match=r"models\[1\].name: at most 100"):
        build_zoo(bad, tmp_path)
    assert not (tmp_path / "results.sqlite").exists()  # the valid first model was not trained
    for name in ("../../../escaped", "/abs/x", "a\0b", ".hidden", "a/b", ""):
        with pytest.raises(ValueError, match="name"):
            load_spec({"models": [{**SPEC["models"][0], "name": name}]})


def test_distinct_checkpoints_with_one_name_are_never_merged(tmp_path, caplog):
    from transferability.model_args import resolve_models
    from transferability.models import create_model, save_checkpoint

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(save_checkpoint(create_model("mlp"), tmp_path / f"s{seed}" / "m.pt",
                                     name="same"))
    a, b = map(str, paths)
    models = load_models([a, b])
    assert list(models) == [a, b]  # same metadata name: disambiguated by path
    assert not torch.equal(models[a].head.weight, models[b].head.weight)
    surrogates, victims = resolve_models([a], [a, b], names=["surrogates", "victims"])
    assert surrogates[a] is victims[a]  # the same file in both roles is one model
    with caplog.at_level("WARNING", logger="transferability"):
        assert len(load_models([a, a])) == 1
    assert "listed more than once" in caplog.text
    single = load_models([a])
    assert list(single) == ["same"]  # no clash: the short name


def test_corrupt_cached_checkpoint_is_moved_aside_and_retrained(tmp_path, caplog):
    spec = {"models": SPEC["models"][:1], "train": {"epochs": 1}}
    first = build_zoo(spec, tmp_path)
    path = first.path("a")
    path.write_bytes(b"garbage")
    with caplog.at_level("WARNING", logger="transferability"):
        again = build_zoo(spec, tmp_path)
    assert again.trained == ["a"] and "corrupt" in caplog.text
    assert len(list(path.parent.glob("*.corrupt-*"))) == 1
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(again["a"](x), first["a"].eval()(x))  # same seed, same weights


def test_an_lgv_entry_starts_from_another_and_saves_one_ensemble(tmp_path):
    from transferability.models import Ensemble

    spec = {"train": {"epochs": 1, "batch_size": 64},
            "models": [SPEC["models"][0],
                       {"name": "a-lgv", "arch": "mlp", "data": SPEC["models"][0]["data"],
                        "init": "a", "train": {"method": "lgv", "per_epoch": 2, "epochs": 2,
                                               "lr": 0.05}}]}
    zoo = build_zoo(spec, tmp_path, only=["a-lgv"])
    assert zoo.trained == ["a", "a-lgv"]  # the entry it starts from comes first
    lgv = zoo["a-lgv"]
    assert isinstance(lgv, Ensemble) and len(lgv) == 4 and lgv.sample == 1
    again = build_zoo(spec, tmp_path)
    assert again.cached == ["a", "a-lgv"] and isinstance(again["a-lgv"], Ensemble)
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(again["a-lgv"](x), lgv.eval()(x))
    edited = {**spec, "models": [{**spec["models"][0], "train": {"epochs": 2}}, spec["models"][1]]}
    assert load_spec(edited)[1].key != load_spec(spec)[1].key  # a new start, a new entry
    with pytest.raises(ValueError, match=r"models\[1\].init"):
        load_spec({"models": [SPEC["models"][0], {**spec["models"][1], "init": "nope"}]})
    with pytest.raises(ValueError, match="same architecture"):
        load_spec({"models": [SPEC["models"][0], {**spec["models"][1], "arch": "cnn"}]})
