"""Hub models with the real timm and torchvision, wherever they import (a GPU machine).

Skipped, with the reason printed (``-rs``), where a package does not import. No network:
weights are ``none`` or a local file; pretrained weights are used only if already cached.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from transferability.features import extract
from transferability.models.hub import load_hub_model


def _package(name: str):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, or torchvision's missing C ops
        pytest.skip(f"{name} does not import here ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); the hub tests with the "
                    "real package run where it does (a GPU machine)")


def _images(n=4, h=40, w=52, c=3):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto", "vit_tiny_patch16_224",
                                  "efficientnet_b0"])
def test_timm_model_matches_timms_own_preprocessing(name):
    timm = _package("timm")
    model = load_hub_model(f"timm:{name}?weights=none")  # on the CPU: no TF32 convolutions
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model.net))
    for x in (_images(), _images(h=300, w=200), _images(c=1, h=64, w=64)):
        own = torch.stack([transform(im.expand(3, -1, -1)) for im in x])
        with torch.no_grad():
            expected = model.net(own)
            got = model(x)
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (name, (got - expected).abs()
                                                                     .max())
        out = extract(model, x)
        with torch.no_grad():
            f = model.net.forward_head(model.net.forward_features(own), pre_logits=True)
        assert torch.allclose(out.features, f.cpu(), atol=1e-4, rtol=1e-4)
        assert out.features.shape[1] == model.net.num_features


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "vit_b_16"])
def test_torchvision_model_matches_the_weights_transforms(name):
    tv = _package("torchvision")
    model = load_hub_model(f"torchvision:{name}?weights=none")
    transform = tv.models.get_model_weights(name).DEFAULT.transforms()
    x = _images(h=300, w=260)
    with torch.no_grad():
        expected = model.net(transform(x))
        got = model(x)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()


def test_hub_model_follows_its_device():
    _package("timm")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here; the device test runs on a GPU machine")
    model = load_hub_model("timm:resnet18?weights=none")
    x = _images()
    cpu = extract(model, x)
    gpu = extract(model.to("cuda"), x)  # inputs follow the model; outputs come back on the CPU
    assert gpu.logits.device.type == "cpu"
    assert torch.allclose(gpu.logits, cpu.logits, atol=1e-2, rtol=1e-2)


def test_weights_from_a_local_file_and_missing_weights(tmp_path, empty_caches):
    _package("timm")
    safetensors = pytest.importorskip("safetensors.torch", reason="safetensors does not import")
    model = load_hub_model("timm:resnet18?weights=none")
    state = {k: v + 0.01 if v.is_floating_point() else v
             for k, v in model.net.state_dict().items()}
    safetensors.save_file(state, str(tmp_path / "r18.safetensors"))
    loaded = load_hub_model(f"timm:resnet18?weights={tmp_path / 'r18.safetensors'}")
    assert torch.equal(loaded.net.fc.weight, state["fc.weight"])
    with pytest.raises(ValueError, match=r"no pretrained weights for timm:resnet18 in the local "
                                         r"cache \(looked for timm/resnet18"):
        load_hub_model("timm:resnet18")
    _package("torchvision")
    with pytest.raises(ValueError, match=r"torchvision:resnet18 .*checkpoints/resnet18-"):
        load_hub_model("torchvision:resnet18")


def test_rank_real_hub_models_on_an_image_folder(tmp_path):
    _package("timm")
    _package("torchvision")
    from PIL import Image

    from transferability.cli import main

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / "imgs" / f"c{c}").mkdir(parents=True)
        for i in range(6):
            a = (rng.integers(0, 90, (48, 64, 3)) + 70 * c).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / "imgs" / f"c{c}" / f"{i}.jpg")
    code = main(["rank", "--target", f"imagefolder:{tmp_path / 'imgs'}", "--sources",
                 "timm:resnet18?weights=none", "timm:convnext_atto?weights=none",
                 "torchvision:resnet18?weights=none", "--estimators", "logme", "leep",
                 "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    import json

    rows = json.loads((tmp_path / "out" / "rank.json").read_text())["rows"]
    assert len(rows) == 3 and all(np.isfinite(r["logme"]) for r in rows)
