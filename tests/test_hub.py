"""Hub models by name (``timm:``, ``torchvision:``, ``hf-hub:``) through stand-in hubs that
follow timm's and torchvision's interfaces (``tests/standin_hub``), and data arguments.

The real packages are tested in ``test_hub_real.py`` wherever they import.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from transferability.cli import main
from transferability.features import extract
from transferability.model_args import load_models
from transferability.models.hub import load_hub_model, parse_hub_argument
from transferability.models.preprocess import Preprocess

STANDIN = Path(__file__).parent / "standin_hub"
HUB_PACKAGES = ("timm", "torchvision")


def _drop_hub_modules() -> dict:
    return {k: sys.modules.pop(k) for k in list(sys.modules)
            if k.split(".")[0] in HUB_PACKAGES}


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """The stand-in timm and torchvision first on ``sys.path``; empty hub caches."""
    saved = _drop_hub_modules()
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield sys.modules.setdefault("timm", __import__("timm"))
    _drop_hub_modules()
    sys.modules.update(saved)


def _images(n=6, c=3, h=30, w=50, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_parse_hub_arguments(tmp_path):
    a = parse_hub_argument("timm:resnet50.a1_in1k")
    assert (a.hub, a.name, a.weights, a.short) == ("timm", "resnet50.a1_in1k", "pretrained",
                                                   "resnet50.a1_in1k")
    assert parse_hub_argument("hf-hub:timm/vit_tiny?weights=none").short == "vit_tiny"
    f = tmp_path / "w.pt"
    f.write_bytes(b"")
    assert parse_hub_argument(f"torchvision:resnet18?weights={f}").identity.endswith(
        f"weights={f.resolve()}")
    for bad, match in [("timm:", "should read"), ("hf-hub:noslash", "ORG/NAME"),
                       ("timm:x?pretrained=1", "only option"),
                       ("timm:x?weights=/no/such.safetensors", "no weights file")]:
        with pytest.raises(ValueError, match=match):
            parse_hub_argument(bad)


def test_missing_package_names_the_extra(monkeypatch):
    for package in HUB_PACKAGES:
        monkeypatch.setitem(sys.modules, package, None)  # import fails, real package or not
    for item, extra in [("timm:resnet50", "timm"), ("hf-hub:timm/resnet18", "timm"),
                        ("torchvision:resnet18", "torchvision")]:
        with pytest.raises(ValueError, match=rf"pip install 'transferability\[{extra}\]'"):
            load_models([item])


def test_preprocessing_matches_the_hubs_own_transform(standin):
    timm = standin
    for name in ("tiny_convnet", "tiny_squash"):
        model = load_hub_model(f"timm:{name}?weights=none")
        transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model.net))
        for x in (_images(), _images(h=50, w=30), _images(c=1, h=33, w=33)):
            expected = model.net(torch.stack([transform(im.expand(3, -1, -1)) for im in x]))
            assert torch.allclose(model(x), expected, atol=1e-5)
    pre = model.preprocess
    assert pre.size == (24, 24) and pre.resize == (24, 24) and pre.crop_mode == "squash"
    conv = load_hub_model("timm:tiny_convnet?weights=none").preprocess
    assert (conv.size, conv.resize, conv.interpolation) == ((40, 40), 45, "bicubic")  # 40/.875
    with pytest.raises(ValueError, match="2-channel images"):
        conv(torch.rand(1, 2, 40, 40))


def test_preprocess_resizes_the_shorter_side_and_crops_the_centre():
    pre = Preprocess((4, 4), 6, "nearest", [0.0], [1.0])
    x = torch.arange(12 * 6, dtype=torch.float32).view(1, 1, 12, 6) / 100
    out = pre(x)  # 12×6 → 12×6 (shorter side 6 already): rows 4..7, columns 1..4
    assert torch.equal(out, x[..., 4:8, 1:5])
    out = Preprocess((2, 2), 3, "nearest", [0.0], [1.0])(x)  # 12×6 → 6×3, crop rows 2..3
    assert torch.equal(out, x[..., ::2, ::2][..., 2:4, 0:2])  # round((3-2)/2) = 0


def test_features_are_the_classifier_input(standin):
    model = load_hub_model("timm:tiny_convnet?weights=none")
    x = _images()
    out = extract(model, x)
    with torch.no_grad():
        f = model.net.forward_features(model.preprocess(x))
        assert torch.allclose(out.features, model.net.forward_head(f, pre_logits=True))
        assert torch.allclose(out.logits, model.net.forward_head(f))
    assert out.features.shape == (6, model.net.num_features)
    tv = load_hub_model("torchvision:tinyvgg?weights=none")  # no forward_head: last Linear
    assert extract(tv, x).features.shape == (6, 12)
    assert (tv.preprocess.size, tv.preprocess.resize) == ((28, 28), 32)


def _hf_cache(root: Path, repo: str, files: dict) -> None:
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    snap = folder / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    for name, write in files.items():
        write(snap / name)


def _perturbed(net) -> dict:
    return {k: v + 0.5 if v.is_floating_point() else v for k, v in net.state_dict().items()}


def test_weights_from_the_local_cache_or_a_file(standin, tmp_path):
    timm = standin
    with pytest.raises(ValueError, match=r"no pretrained weights for timm:tiny_convnet in the "
                                         r"local cache \(looked for standin/tiny_convnet.fake in "
                                         rf".*{tmp_path.name}.*hf\); nothing is downloaded"):
        load_models(["timm:tiny_convnet"])
    state = _perturbed(timm.create_model("tiny_convnet"))
    _hf_cache(tmp_path / "hf", "standin/tiny_convnet.fake",
              {"pytorch_model.bin": lambda p: torch.save(state, p)})
    model = load_models(["timm:tiny_convnet"])["tiny_convnet"]
    assert torch.equal(model.net.stem.weight, state["stem.weight"])
    # a torch.hub URL: the file in $TORCH_HOME/hub/checkpoints
    with pytest.raises(ValueError, match=r"looked for .*checkpoints/tiny_squash-0123\.pth"):
        load_hub_model("timm:tiny_squash")
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    sq = _perturbed(timm.create_model("tiny_squash"))
    torch.save(sq, ckpt / "tiny_squash-0123.pth")
    assert torch.equal(load_hub_model("timm:tiny_squash").net.fc.bias, sq["fc.bias"])
    # torchvision: its DEFAULT weights' file in the same cache
    with pytest.raises(ValueError, match=r"torchvision:tinyvgg .*tinyvgg-abc123\.pth"):
        load_hub_model("torchvision:tinyvgg")
    # a local state dict (wrapped or not) for either hub; one that does not fit
    file = tmp_path / "mine.pt"
    torch.save({"state_dict": state}, file)
    assert torch.equal(load_hub_model(f"timm:tiny_convnet?weights={file}").net.fc.weight,
                       state["fc.weight"])
    with pytest.raises(ValueError, match=r"weights: .*mine\.pt does not fit torchvision:tinyvgg"):
        load_hub_model(f"torchvision:tinyvgg?weights={file}")
    with pytest.raises(ValueError, match="timm has no model 'resnet9000'"):
        load_models(["timm:resnet9000?weights=none"])


def test_hf_hub_reads_the_repository_config_from_the_cache(standin, tmp_path):
    with pytest.raises(ValueError, match=r"hf-hub:me/tiny is not in the local Hugging Face"):
        load_hub_model("hf-hub:me/tiny")
    config = {"architecture": "tiny_convnet", "num_classes": 3,
              "pretrained_cfg": {"input_size": [3, 36, 36], "interpolation": "bilinear",
                                 "crop_pct": 1.0, "crop_mode": "center", "mean": [0.5] * 3,
                                 "std": [0.5] * 3, "source": "hf-hub"}}
    net = standin.create_model("tiny_convnet", num_classes=3)
    state = _perturbed(net)
    _hf_cache(tmp_path / "hf", "me/tiny",
              {"config.json": lambda p: p.write_text(json.dumps(config)),
               "pytorch_model.bin": lambda p: torch.save(state, p)})
    model = load_hub_model("hf-hub:me/tiny")
    assert model.net.fc.out_features == 3 and model.preprocess.size == (36, 36)
    assert torch.equal(model.net.fc.weight, state["fc.weight"])
    assert model.meta["name"] == "tiny" and model.meta["hub"] == "hf-hub"


def _image_folder(root: Path, *, classes=3, per_class=8, size=(20, 26), mode="RGB", seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 80, (*size, 3), dtype=np.uint8) + np.uint8(60 * c)
            im = Image.fromarray(a, "RGB").convert(mode)
            im.save(root / f"class{c}" / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_image_folder_argument(tmp_path):
    from transferability.data import load_dataset

    root = _image_folder(tmp_path / "imgs")
    full = load_dataset(f"imagefolder:{root}", "all")
    assert full.x.shape == (24, 3, 20, 26) and full.class_names == ["class0", "class1", "class2"]
    train = load_dataset(f"imagefolder:{root}?n_per_class=2", "train", seed=3)
    assert train.class_counts().tolist() == [2, 2, 2]
    assert load_dataset(f"imagefolder:{root}?size=16&mode=L", "test").shape == (1, 16, 16)
    (root / "class1" / "9.png").write_bytes(b"broken")  # skipped, counted
    from transferability.data.user import ImageFolder

    folder = ImageFolder(root)
    assert folder.skipped == 1 and len(folder) == 24
    from PIL import Image

    Image.new("L", (20, 26)).save(root / "class2" / "gray.png")
    with pytest.raises(ValueError, match=r"root: .* mixes grayscale \(gray\.png\) and colour"):
        ImageFolder(root)
    (root / "class3").mkdir()
    (root / "class3" / "x.png").write_bytes(b"also broken")
    with pytest.raises(ValueError, match=r"class folder .*class3 has no readable image"):
        ImageFolder(root, mode="RGB")
    for bad, match in [(f"imagefolder:{tmp_path}/nope", "no such folder"),
                       (f"npz:{tmp_path}/x.npz", "no such file"),
                       (f"imagefolder:{root}?shape=3", "takes the options")]:
        with pytest.raises(ValueError, match=match):
            load_dataset(bad)
    own = tmp_path / "own"
    _image_folder(own / "train", per_class=4)
    _image_folder(own / "val", per_class=2, seed=1)
    assert len(load_dataset(f"imagefolder:{own}", "test")) == 6
    assert len(load_dataset(f"imagefolder:{own}", "train")) == 12


def test_users_split_is_recorded_in_the_store_and_reused(tmp_path, monkeypatch):
    from transferability.data import load_dataset, split_indices
    from transferability.jobs import ResultStore
    from transferability.studies import adv_knowledge

    arg = f"imagefolder:{_image_folder(tmp_path / 'imgs')}"
    with ResultStore(tmp_path / "s.sqlite") as store:
        splitter = adv_knowledge.stored_splitter(store)
        train = load_dataset(arg, "train", seed=5, splitter=splitter)
        test = load_dataset(arg, "test", seed=5, splitter=splitter)
        (record,) = store.records(kind="data_split")  # train and test: one split
    full = load_dataset(arg, "all")
    expected = split_indices(full, 0.2, 5)
    assert record.value["seed"] == 5 and record.value["test_fraction"] == 0.2
    assert record.value["train"] == expected[0].tolist()
    assert record.value["test"] == expected[1].tolist() != split_indices(full, 0.2, 6)[1].tolist()
    assert sorted(record.value["train"] + record.value["test"]) == list(range(24))
    assert torch.equal(train.x, full.x[expected[0]]) and torch.equal(test.y, full.y[expected[1]])
    assert test.class_counts().tolist() == [2, 2, 2]  # stratified: 20% of 8 per class
    # a rerun reads the split back from the store: drawing it again would fail
    monkeypatch.setattr(adv_knowledge, "split_indices", lambda *a: pytest.fail("drawn again"))
    with ResultStore(tmp_path / "s.sqlite") as store:
        again = load_dataset(arg, "test", seed=5, splitter=adv_knowledge.stored_splitter(store))
        assert len(store.records(kind="data_split")) == 1
    assert torch.equal(again.x, test.x)


def test_rank_hub_models_on_an_image_folder(standin, tmp_path, capsys):
    root = _image_folder(tmp_path / "imgs")
    file = tmp_path / "tiny.pt"
    torch.save(_perturbed(standin.create_model("tiny_convnet")), file)
    code = main(["rank", "--target", f"imagefolder:{root}", "--sources",
                 "timm:tiny_convnet?weights=none", f"timm:tiny_convnet?weights={file}",
                 "torchvision:tinyvgg?weights=none", "--estimators", "logme", "leep",
                 "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = json.loads((tmp_path / "out" / "rank.json").read_text())["rows"]
    assert {r["source"] for r in rows} == {"timm:tiny_convnet?weights=none",
                                           f"timm:tiny_convnet?weights={file}", "tinyvgg"}
    assert all(np.isfinite(r["logme"]) for r in rows)
    from transferability.jobs import ResultStore

    def stored():
        with ResultStore(tmp_path / "cache" / "results.sqlite") as store:
            return [r.config for r in store.records(kind="features")]
    assert len(stored()) == 3  # one extraction per model
    with ResultStore(tmp_path / "cache" / "results.sqlite") as store:
        (split,) = store.records(kind="data_split")  # the seeded split of the folder, recorded
    assert split.value["seed"] == 0 and len(split.value["train"]) == 18
    again = ["rank", "--target", f"imagefolder:{root}", "--sources",
             "timm:tiny_convnet?weights=none", "--estimators", "logme", "--out",
             str(tmp_path / "out2"), "--cache-dir", str(tmp_path / "cache")]
    assert main(again) == 0 and len(stored()) == 3  # ranked again: nothing extracted
    assert main([*again, "--cache-float16"]) == 0
    assert sum(bool(c.get("float16")) for c in stored()) == 1
    first = json.loads((tmp_path / "out2" / "rank.json").read_text())["rows"][0]["logme"]
    assert first == pytest.approx(next(r["logme"] for r in rows
                                       if r["source"] == "timm:tiny_convnet?weights=none"),
                                  rel=1e-3)
    code = main(["rank", "--target", f"imagefolder:{root}", "--sources", "timm:nope",
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "timm has no model 'nope'" in capsys.readouterr().err


def test_hf_dataset_argument(tmp_path):
    try:
        import datasets
    except Exception as exc:
        pytest.skip(f"datasets does not import here ({type(exc).__name__}); hf: data is "
                    "tested where it does (pip install 'transferability[hf]')")
    from PIL import Image

    from transferability.data import load_dataset

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
              for _ in range(12)]
    features = datasets.Features({"img": datasets.Image(),
                                  "fine": datasets.ClassLabel(names=["a", "b", "c"])})
    ds = datasets.Dataset.from_dict({"img": images, "fine": [0, 1, 2] * 4}, features=features)
    ds.save_to_disk(str(tmp_path / "one"))
    full = load_dataset(f"hf:{tmp_path / 'one'}", "all")
    assert full.x.shape == (12, 3, 12, 10) and full.class_names == ["a", "b", "c"]
    assert torch.allclose(full.x[0], torch.from_numpy(np.array(images[0])).permute(2, 0, 1)
                          .float() / 255)
    datasets.DatasetDict({"train": ds, "test": ds.select(range(3))}).save_to_disk(
        str(tmp_path / "dict"))
    assert len(load_dataset(f"hf:{tmp_path / 'dict'}", "test")) == 3
    bad = datasets.Dataset.from_dict({"image": images[:3], "label": [0, 1, -1]},
                                     features=datasets.Features({"image": datasets.Image(),
                                                                 "label": datasets.Value("int64")}))
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(ValueError, match=r"label column 'label' has 1 value\(s\) outside"):
        load_dataset(f"hf:{tmp_path / 'bad'}", "all")
