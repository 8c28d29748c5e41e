"""Our attacks against independent implementations (torchattacks 3.5.1, torchattack 1.7.2),
by the one pairing table of ``benchmarks/differential.py``: deterministic attacks give the
same images in float64, random ones the same white-box and transfer rates.

The models: two small ResNets with torchvision's module names (``layer1.0.relu``, which
torchattack's SGM hooks by name), trained for a few seconds on the bundled ``digits`` in
colour (torchattacks' TI filters three channels)."""

from __future__ import annotations

import copy

import pytest
import torch
from benchmarks.differential import PAIRS, available, compare
from torch import nn

from transferability.data import load_dataset
from transferability.training import fit

EPS, EPOCHS = 0.1, 5


class Block(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                           if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class TinyResNet(nn.Module):
    """conv1-bn1-relu stem, two stages of two blocks (torchvision's names), pooled fc."""

    def __init__(self, width=8, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(Block(width, width), Block(width, width))
        self.layer2 = nn.Sequential(Block(width, 2 * width, 2), Block(2 * width, 2 * width))
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(2 * x - 1)))
        return self.fc(self.layer2(self.layer1(h)).mean(dim=(2, 3)))


def _colour(ds):
    """digits at 14×14, in three channels"""
    x = nn.functional.avg_pool2d(ds.x, 2).repeat(1, 3, 1, 1)
    return x, ds.y


@pytest.fixture(scope="module")
def zoo():
    """The surrogate, a victim (another seed) and 128 test images."""
    train = _colour(load_dataset("digits"))
    x, y = _colour(load_dataset("digits", "test"))
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = TinyResNet()
        fit(model, train, epochs=EPOCHS, lr=0.05, seed=seed, show_progress=False)
        models.append(model.eval())
    return models, x[:128], y[:128]


def test_the_models_learned_something(zoo):
    models, x, y = zoo
    with torch.no_grad():
        assert [(m(x).argmax(1) == y).double().mean() > 0.85 for m in models] == [True, True]


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_same_attack_as_an_independent_implementation(zoo, name):
    """Deterministic pairs in float64 on 50 images (the algorithm, not its rounding); random
    pairs by their transfer rate on 128 (float32: the same rates, twice as fast)."""
    pair = PAIRS[name]
    why = available(pair)
    if why:
        pytest.skip(why)
    (model, victim), x, y = zoo
    if not pair.random:
        model, victim = (copy.deepcopy(m).double() for m in (model, victim))
        x, y = x[:50].double(), y[:50]
    r = compare(name, model, x, y, eps=EPS, victim=victim)
    assert r["ok"], r
    assert r["our_rate"] > 0.5  # the attack did something
    assert not pair.random or r["our_transfer"] > 0.1  # and the judged rate can differ
