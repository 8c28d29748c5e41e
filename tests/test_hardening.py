"""Regressions found in review: each of these once trained too much, raised the wrong
exception, merged two things or silently returned nan."""

import functools
import os
import stat

import pytest
import torch
import yaml

from transferability._files import write_bytes
from transferability.adversarial import attribution_affinity, gradient_alignment
from transferability.attacks import PGD
from transferability.features import extract
from transferability.model_args import load_models
from transferability.models import create_model
from transferability.training import fit
from transferability.transfer import fine_tune
from transferability.zoo import build_zoo

SPEC = {"train": {"epochs": 1, "batch_size": 64},
        "models": [{"name": "a", "arch": "mlp", "data": {"dataset": "digits", "n_per_class": 10}},
                   {"name": "b", "arch": "mlp", "data": {"dataset": "digits", "n_per_class": 12}}]}


def test_spec_name_trains_only_that_model_and_checks_the_name_first(tmp_path):
    spec = tmp_path / "zoo.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="no model 'zzz'"):
        load_models([f"{spec}:zzz"], cache)
    assert not (cache / "results.sqlite").exists()
    assert list(load_models([f"{spec}:a"], cache)) == ["a"]
    assert len(list((cache / "results.artifacts").glob("*.pt"))) == 1


def test_a_later_entry_with_bad_dataset_options_trains_nothing(tmp_path):
    bad = {"models": [SPEC["models"][0],
                      {"name": "c", "arch": "mlp", "data": {"dataset": "fonts",
                                                            "options": {"bogus": 1}}}]}
    with pytest.raises(ValueError, match=r"models\[1\].data.options"):
        build_zoo(bad, tmp_path)
    assert not (tmp_path / "results.sqlite").exists()


def test_factory_attacks_work_in_rank_sources(blobs):
    from transferability.data import ImageDataset
    from transferability.ranking import rank_sources

    x, y = blobs
    train = ImageDataset(x, y)
    reference = create_model("mlp", 3)
    fit(reference, train, epochs=1, show_progress=False)
    factory = functools.partial(PGD, eps=0.1, steps=2, use_predictions=True, seed=0)
    result = rank_sources({"s": create_model("mlp", 3)}, train, estimators=["alpha1"],
                          reference=reference, alpha_per_class=2, attack=factory,
                          show_progress=False)
    assert result.rows[0]["alpha1"] > 0


def test_float64_misfit_and_nan_models_in_gradient_measures(blobs):
    x, y = blobs
    a, b = create_model("mlp", 3), create_model("cnn", 3)
    assert gradient_alignment(a, b, x[:4].double()).per_sample.shape == (4,)
    with pytest.raises(ValueError, match="do not fit"):
        attribution_affinity(a, b, torch.rand(2, 3, 28, 28))
    nan = create_model("mlp", 3)
    with torch.no_grad():
        nan.head.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        gradient_alignment(a, nan, x[:4])
    fit(a, (x.double(), y), epochs=1, show_progress=False)  # converted to the model's dtype
    with pytest.raises(ValueError, match="do not fit"):
        fit(a, (torch.rand(8, 3, 32, 32), torch.arange(8) % 3), epochs=1)



def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_bytes(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_odd_models_and_arguments_get_value_errors(blobs):
    x, y = blobs

    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 3)

        def forward(self, z):
            out = self.fc(z.flatten(1))
            return out, out

    with pytest.raises(ValueError, match="tensor of logits"):
        extract(Pair(), x[:4])
    with pytest.raises(ValueError, match="layer_input"):
        extract(create_model("mlp", 3), x[:4], layer_input=True)
    with pytest.raises(ValueError, match="freeze"):
        fine_tune(create_model("cnn", 3), (x, y), (x, y), freeze=1.5)
