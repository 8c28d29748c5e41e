import numpy as np
import pytest
import torch

from transferability.features import with_head
from transferability.models import create_model
from transferability.training import evaluate, fit
from transferability.transfer import (
    _few_shot_indices,
    fine_tune,
    linear_probe,
    probe_features,
)


def test_probe_on_separable_features_beats_chance_by_far():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 16)) * 3
    y = np.repeat(np.arange(5), 80)
    f = centers[y] + rng.normal(size=(400, 16))
    yt = np.repeat(np.arange(5), 40)
    ft = centers[yt] + rng.normal(size=(200, 16))
    full = probe_features(f, y, ft, yt)
    assert full.accuracy > 0.95  # chance is 0.2
    few = probe_features(f, y, ft, yt, shots=3, repeats=4, seed=1)
    assert few.accuracy > 0.8 and len(few.accuracies) == 4 and few.accuracy_std >= 0
    assert few.accuracy == pytest.approx(np.mean(few.accuracies))
    noise = probe_features(rng.normal(size=(400, 16)), y, rng.normal(size=(200, 16)), yt)
    assert noise.accuracy < 0.35


def test_few_shot_probe_sees_only_its_draw():
    """Samples outside every draw (and their feature statistics) cannot change the result."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    f = rng.normal(size=(90, 6)) + y[:, None]
    ft, yt = rng.normal(size=(30, 6)) + np.repeat(np.arange(3), 10)[:, None], np.repeat(
        np.arange(3), 10)
    drawn = np.unique(_few_shot_indices(y, 4, 3, seed=5))
    shifted = f.copy()
    outside = np.setdiff1d(np.arange(90), drawn)
    shifted[outside] = shifted[outside] * 100 + 1000
    a = probe_features(f, y, ft, yt, shots=4, repeats=3, seed=5)
    b = probe_features(shifted, y, ft, yt, shots=4, repeats=3, seed=5)
    assert a.accuracies == b.accuracies and a.loss == pytest.approx(b.loss, rel=1e-6)


def test_few_shot_indices_are_stratified_distinct_and_seeded():
    y = np.repeat(np.arange(4), [10, 7, 12, 9])
    idx = _few_shot_indices(y, shots=5, repeats=3, seed=0)
    assert idx.shape == (3, 20)
    for row in idx:
        assert np.bincount(y[row]).tolist() == [5, 5, 5, 5] and len(set(row)) == 20
    assert not np.array_equal(idx[0], idx[1])
    assert np.array_equal(idx, _few_shot_indices(y, 5, 3, seed=0))
    with pytest.raises(ValueError, match="shots"):
        _few_shot_indices(y, shots=8, repeats=1, seed=0)


def test_linear_probe_and_fine_tune_on_a_model(blobs):
    x, y = blobs
    model = create_model("cnn", num_classes=3)
    fit(model, (x, y), epochs=1)
    probe = linear_probe(model, (x, y), (x, y))
    assert probe.accuracy > 0.9
    # the folded head reproduces the probe's accuracy on raw features
    probed = with_head(model, probe.head)
    assert evaluate(probed, (x, y))[0] == pytest.approx(probe.accuracy)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = fine_tune(model, (x, y % 2), (x, y % 2), epochs=2, freeze=1)  # last block
    assert tuned.accuracy > 0.9 and tuned.model.num_classes == 2
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(tuned.model.backbone[0][0].weight, model.backbone[0][0].weight)  # frozen
    with pytest.raises(ValueError, match="freeze"):
        fine_tune(model, (x, y), (x, y), freeze=9)


def test_frozen_blocks_keep_batchnorm_statistics(blobs):
    x, y = blobs
    model = create_model("resnet", num_classes=3)
    fit(model, (x, y), epochs=1)
    model.eval()
    tuned = fine_tune(model, (x, y), (x, y), epochs=1, freeze=3).model  # 2 frozen
    for frozen, original in zip(tuned.backbone[:2].modules(), model.backbone[:2].modules(),
                                strict=True):
        if isinstance(frozen, torch.nn.BatchNorm2d):
            assert torch.equal(frozen.running_mean, original.running_mean)
            assert torch.equal(frozen.running_var, original.running_var)
    # the trainable blocks' statistics did move
    assert not torch.equal(tuned.backbone[3].bn1.running_mean, model.backbone[3].bn1.running_mean)
    assert not tuned.training and not tuned.backbone[0][1].training


def test_probe_bad_input():
    f = np.zeros((10, 3))
    with pytest.raises(ValueError, match="train_labels"):
        probe_features(f, np.array([0, 2] * 5), f, np.zeros(10, int))
    with pytest.raises(ValueError, match="lr"):
        probe_features(f, np.array([0, 1] * 5), f, np.array([0, 1] * 5), lr=0)
