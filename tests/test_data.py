import numpy as np
import pytest
import torch

from transferability.data import (
    ImageDataset,
    dataset_from_spec,
    list_datasets,
    load_dataset,
    load_image_folder,
    load_npz,
    mixture,
    per_class,
    relabel,
    select_classes,
)
from transferability.data.sources import render_fonts

EXPECTED = {"mnist": 5000, "digits": 1797, "animals": 10000, "fonts": 5000, "synthetic": 5000}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_datasets_shapes_ranges_and_classes(name):
    full = load_dataset(name, "all")
    assert len(full) == EXPECTED[name]
    assert full.x.shape[1:] == (1, 28, 28) and full.x.dtype == torch.float32
    assert full.y.dtype == torch.int64
    assert 0.0 <= full.x.min() and full.x.max() <= 1.0
    assert full.x.max() > 0.9  # real ink, not an all-dark array
    assert full.num_classes == 10 and set(full.y.tolist()) == set(range(10))
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert len(train) + len(test) == len(full)
    # stratified: every class is ~20% in test
    frac = test.class_counts() / full.class_counts()
    assert np.allclose(frac, 0.2, atol=0.01)


def test_split_is_deterministic_by_seed_and_disjoint():
    a, b = load_dataset("mnist", "test", seed=3), load_dataset("mnist", "test", seed=3)
    c = load_dataset("mnist", "test", seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    train = load_dataset("mnist", "train", seed=3)
    rows = {bytes(r.numpy().tobytes()) for r in train.x[:, 0, 14]}  # one row as a fingerprint
    test_rows = [bytes(r.numpy().tobytes()) for r in a.x[:, 0, 14]]
    overlap = sum(r in rows for r in test_rows)
    assert overlap < 0.2 * len(test_rows)  # mostly-blank rows may coincide, images don't


def test_fonts_are_deterministic_by_seed():
    x1, y1, _ = render_fonts(20, seed=1)
    x2, _, _ = render_fonts(20, seed=1)
    x3, _, _ = render_fonts(20, seed=2)
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    assert np.bincount(y1).tolist() == [20] * 10


def test_synthetic_shared_structure_controls_class_means():
    def means(task_seed, shared):
        ds = load_dataset("synthetic", "all", shared=shared, task_seed=task_seed, n_per_class=50)
        return torch.stack([ds.x[ds.y == c].mean(0).flatten() for c in range(10)])

    same = torch.nn.functional.cosine_similarity(means(1, 1.0), means(2, 1.0)).mean()
    none = torch.nn.functional.cosine_similarity(means(1, 0.0), means(2, 0.0)).mean()
    assert same > 0.99 and none < same - 0.01


def test_mixture_class_composition():
    fonts, animals = load_dataset("fonts"), load_dataset("animals")
    mix = mixture(fonts, animals, k=3, n_per_class=40, seed=0)
    assert mix.class_counts().tolist() == [40] * 10
    assert [n.split(":")[0] for n in mix.class_names] == ["fonts/train"] * 3 + ["animals/train"] * 7
    # class 0 images are fonts' zeros, class 5 images are animals' class 5
    fonts_zero = {t.numpy().tobytes() for t in fonts.x[fonts.y == 0]}
    animals_five = {t.numpy().tobytes() for t in animals.x[animals.y == 5]}
    assert all(t.numpy().tobytes() in fonts_zero for t in mix.x[mix.y == 0])
    assert all(t.numpy().tobytes() in animals_five for t in mix.x[mix.y == 5])
    assert len(mixture(fonts, animals, k=10)) == len(fonts)
    with pytest.raises(ValueError, match="k"):
        mixture(fonts, animals, k=11)


def test_task_builders():
    ds = load_dataset("digits")
    sub = select_classes(ds, [7, 2])
    assert sub.num_classes == 2 and sub.class_names == ["7", "2"]
    assert (sub.y == 0).sum() == (ds.y == 7).sum()
    merged = relabel(ds, [c % 2 for c in range(10)])
    assert merged.num_classes == 2 and len(merged) == len(ds)
    assert merged.class_names[0] == "0+2+4+6+8"
    few = per_class(ds, 5, seed=0)
    assert few.class_counts().tolist() == [5] * 10
    assert torch.equal(per_class(ds, 5, seed=0).x, few.x)
    assert not torch.equal(per_class(ds, 5, seed=1).x, few.x)
    with pytest.raises(ValueError, match="n: 1000 per class"):
        per_class(ds, 1000)
    with pytest.raises(ValueError, match="classes"):
        select_classes(ds, [0, 12])


def test_dataset_from_spec():
    ds = dataset_from_spec({"mixture": ["fonts", "animals"], "k": 4, "n_per_class": 30})
    assert ds.class_counts().tolist() == [30] * 10
    ds = dataset_from_spec({"dataset": "mnist", "classes": [3, 8]}, "test")
    assert ds.num_classes == 2 and len(ds) == 200
    with pytest.raises(ValueError, match="unknown key"):
        dataset_from_spec({"dataset": "mnist", "bogus": 1})


def test_user_npz_and_image_folder(tmp_path):
    from PIL import Image

    x = (np.random.default_rng(0).random((12, 28, 28)) * 255).astype(np.uint8)
    y = np.repeat([0, 1, 2], 4)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    ds = load_npz(tmp_path / "mine.npz")
    assert ds.x.shape == (12, 1, 28, 28) and ds.num_classes == 3
    assert torch.allclose(ds.x[0, 0], torch.from_numpy(x[0] / 255.0).float())
    assert len(load_dataset(str(tmp_path / "mine.npz"), "all")) == 12
    np.savez(tmp_path / "bad.npz", x=x)
    with pytest.raises(ValueError, match="missing"):
        load_npz(tmp_path / "bad.npz")
    floats = x / 255.0
    floats[0, 0, 0] = 1.0001  # a hair above 1: no silent division by 255
    np.savez(tmp_path / "floats.npz", x=floats, y=y)
    with pytest.raises(ValueError, match=r"floats in \[0, 1\]"):
        load_npz(tmp_path / "floats.npz")
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(x[i]).resize((40, 40)).save(tmp_path / "imgs" / cls / f"{i}.png")
    folder = load_image_folder(tmp_path / "imgs")
    assert folder.class_names == ["cat", "dog"] and folder.x.shape == (6, 1, 28, 28)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="mnist"):  # the error lists valid names
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", "val")
    with pytest.raises(ValueError, match=r"x: values must lie in \[0, 1\]"):
        ImageDataset(torch.full((2, 1, 4, 4), 2.0), [0, 1])
    with pytest.raises(ValueError, match="y: expected 2 labels"):
        ImageDataset(torch.zeros(2, 1, 4, 4), [0, 1, 1])
    assert {d.name for d in list_datasets()} == set(EXPECTED)
