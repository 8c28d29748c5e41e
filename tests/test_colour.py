"""The bundled colour task (``colour-digits``, ``colour-animals``) and ``resnet18``."""

from __future__ import annotations

import torch

from transferability.attacks import AttackSpec
from transferability.data import dataset_from_spec, list_datasets, load_dataset
from transferability.data.colour import _blur, _warp, colour_animals, colour_digits
from transferability.models import create_model


def test_colour_task_is_deterministic_rgb_and_balanced():
    x, y, names = colour_digits(20, seed=3)
    assert x.shape == (200, 3, 32, 32) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and names[:3] == ["0", "1", "2"]
    assert (torch.bincount(torch.from_numpy(y)) == 20).all()
    assert torch.equal(x, colour_digits(20, seed=3)[0])  # same seed, same images
    assert not torch.equal(x, colour_digits(20, seed=4)[0])
    a = colour_animals(20, seed=3)[0]
    assert a.shape == x.shape and not torch.equal(a, x)
    # colour: the channels differ (not a grey image repeated)
    assert (x[:, 0] - x[:, 1]).abs().mean() > 0.05
    assert {"colour-digits", "colour-animals"} <= set(list_datasets())


def test_colour_mixture_and_split():
    train = load_dataset("colour-digits", "train", n_per_class=10)
    assert train.shape == (3, 32, 32) and len(train) == 80
    small = [{"dataset": d, "options": {"n_per_class": 12}} for d in ("colour-digits",
                                                                     "colour-animals")]
    mix = dataset_from_spec({"mixture": small, "k": 5,
                             "seed": 1}, "train")
    assert mix.class_names[0].startswith("colour-digits") and mix.class_names[9].startswith(
        "colour-animals") and mix.shape == (3, 32, 32)


def test_warp_places_and_scales_a_shape():
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 20:28, 20:28] = 1  # a centred square, 1/6 of the side
    import numpy as np

    out = _warp(mask, np.array([1.0]), np.array([0.0]), np.array([[0.0, 0.0]]))
    rows = out[0, 0].sum(1).nonzero().flatten()
    assert abs(rows.float().mean().item() - 15.5) < 0.6  # still centred
    half = _warp(mask, np.array([0.5]), np.array([0.0]), np.array([[0.5, 0.0]]))
    cols = half[0, 0].sum(0)
    assert cols[:16].sum() < 1e-6 < cols[16:].sum()  # shifted right
    assert half.sum() < out.sum() / 3  # a quarter of the area
    x = torch.rand(2, 3, 32, 32)
    blurred = _blur(x.clone(), np.array([0, 3]))  # in place
    assert torch.equal(blurred[0], x[0]) and blurred[1].std() < x[1].std()


def test_resnet18_has_resnet18_widths_and_takes_colour_images():
    model = create_model("resnet18", num_classes=10, in_channels=3)
    n = sum(p.numel() for p in model.parameters())
    assert 11.0e6 < n < 11.3e6  # ResNet-18's 11.2 M parameters (its 10-class head)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert model.features(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_animal_silhouettes_fill_their_glyph():
    from transferability.data.colour import _animal_glyphs

    glyphs = _animal_glyphs()
    assert glyphs.shape == (10, 200, 48, 48)
    inside = glyphs.flatten(0, 1) > 0.5
    rows, cols = inside.any(2).sum(1), inside.any(1).sum(1)
    # cut to its bounding box and scaled: the longer side spans about 44 of 48 pixels
    longer = torch.maximum(rows, cols).float()
    assert 42 <= longer.median() <= 45 and (longer >= 38).float().mean() > 0.95


def test_colour_target_settings(monkeypatch, tmp_path):
    import dataclasses

    import pytest

    from transferability import studies
    from transferability.cli import main
    from transferability.demo import demo_spec
    from transferability.studies.robust_transfer import QUICK

    seen = {}

    class Ran(Exception):
        pass

    def run(settings, **where):
        seen.clear()
        seen.update(settings.keywords())
        raise Ran

    real = studies.get_study
    monkeypatch.setattr(studies, "get_study", lambda name, *a: dataclasses.replace(
        real(name, *a), run=run))
    common = ["--quick", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")]
    with pytest.raises(Ran):
        main(["study", "robust-transfer", "--target", "colour-digits", "--radii", "0.05",
              *common])
    assert seen["source_per_class"] == 800 and seen["tune_epochs"] == 4
    assert seen["source_attack"] == AttackSpec("pgd", {"eps": 4 / 255})
    assert seen["radii"] == (0.05,)  # the command line over the colour settings
    with pytest.raises(Ran):
        main(["study", "robust-transfer", "--target", "mnist", *common])
    assert seen["source_per_class"] == QUICK.source_per_class and seen["radii"] == (0.1,)
    with pytest.raises(Ran):
        main(["study", "surrogates", "--target", "colour-digits", "--seeds", "4", *common])
    assert (seen["train_per_class"], seen["epochs"], seen["seeds"]) == (800, 8, (4,))
    assert seen["rhos"] == (0.02, 0.05, 0.1)
    assert seen["attack"].options == {"eps": 8 / 255, "steps": 20}
    assert seen["victim_schedule"] == "cosine"  # the resnet victim leaves chance with it
    # the demo: colour sources, trained long enough, only for a colour target
    colour, plain = demo_spec(True, "colour-digits")["models"], demo_spec(True)["models"]
    assert [m["name"] for m in colour] == [m["name"] for m in plain]
    assert colour[0]["data"]["mixture"] == ["colour-digits", "colour-animals"]
    assert plain[0]["data"]["mixture"] == ["fonts", "animals"]
    assert colour[0]["train"]["epochs"] == 8 and plain[0]["train"]["epochs"] == 1
