"""Ensembles of surrogates (Liu et al. 2017; LGV sampling, Gubri et al. 2022), checked
against hand-written references on tiny untrained models (16×16 inputs)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferability.adversarial import alpha
from transferability.attacks import MIFGSM, PGD, AttackSpec, create_attack
from transferability.features import predict
from transferability.models import Ensemble, create_model

EPS = 0.1


def members(k: int, arch: str = "cnn", **kw) -> list[nn.Module]:
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        out.append(create_model(arch, num_classes=4, **({"width": 4} if arch == "cnn" else {}),
                                **kw).eval())
    return out


def mixed() -> list[nn.Module]:
    torch.manual_seed(0)
    return [create_model("cnn", num_classes=4, width=4), create_model("mlp", num_classes=4,
            image_size=16, hidden=32), create_model("lenet", num_classes=4)]


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 16, 16, generator=g), torch.arange(8) % 4


class Recorder(nn.Module):
    """A member that logs which member ran a forward with grad enabled (an attack step)."""

    def __init__(self, inner: nn.Module, index: int, log: list):
        super().__init__()
        self.inner, self.index, self.log = inner, index, log

    def forward(self, x):
        if torch.is_grad_enabled():
            self.log.append((self.index, self.training))
        return self.inner(x)


def recorded(k: int) -> tuple[list[nn.Module], list]:
    log: list = []
    return [Recorder(m, i, log) for i, m in enumerate(members(k))], log


def sum_ce(logits, y):
    return F.cross_entropy(logits, y, reduction="sum")


@pytest.mark.parametrize("make", [lambda: members(3), mixed], ids=["same-arch", "mixed"])
def test_forward_is_the_mean_of_the_members_logits(make, data):
    ms = make()
    ens = Ensemble(ms)
    x = data[0]
    with torch.no_grad():
        expected = sum(m(x) for m in ms) / len(ms)
        torch.testing.assert_close(ens(x), expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(predict(ens, x), expected, atol=1e-6, rtol=0)
    assert len(ens) == len(ms) and ens[1] is ms[1] and isinstance(ens.members, nn.ModuleList)
    with torch.no_grad():  # no cached state: a member's new weights show at once
        ms[0].head.bias.add_(1.0)
        torch.testing.assert_close(ens(x), sum(m(x) for m in ms) / len(ms), atol=1e-6, rtol=0)


@pytest.mark.parametrize("combine", ["logits", "loss"])
@pytest.mark.parametrize("make", [lambda: members(3), mixed], ids=["same-arch", "mixed"])
def test_attack_gradient_matches_autograd_by_hand(combine, make, data):
    ms = make()
    x, y = data
    xr = x.clone().requires_grad_(True)
    if combine == "loss":
        objective = sum(sum_ce(m(xr), y) for m in ms) / len(ms)
    else:
        objective = sum_ce(sum(m(xr) for m in ms) / len(ms), y)
    (expected,) = torch.autograd.grad(objective, xr)
    got = PGD(Ensemble(ms, combine=combine), EPS).gradient(x, y)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert all(p.grad is None for m in ms for p in m.parameters())


def test_loss_and_logits_combine_differ(data):
    x, y = data
    grads = [PGD(Ensemble(members(3), combine=c), EPS).gradient(x, y) for c in ("logits", "loss")]
    assert not torch.allclose(*grads)


def test_sample_one_walks_a_shuffled_cycle(data):
    x, y = data
    k, steps = 4, 8
    ms, log = recorded(k)
    attack = PGD(Ensemble(ms, sample=1, seed=0), EPS, steps=steps, seed=0)
    first = attack(x, y)
    order = [i for i, _ in log]
    assert len(order) == steps
    for c in range(0, steps, k):  # each cycle is a permutation: every member T/K times
        assert sorted(order[c:c + k]) == list(range(k))
    assert all(not training for _, training in log)
    log.clear()
    torch.testing.assert_close(attack(x, y), first, atol=0, rtol=0)  # reset per call
    assert [i for i, _ in log] == order
    again = PGD(Ensemble(ms, sample=1, seed=0), EPS, steps=steps, seed=0)(x, y)
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    log.clear()
    other = PGD(Ensemble(ms, sample=1, seed=1), EPS, steps=steps, seed=0)(x, y)
    assert [i for i, _ in log] != order and not torch.equal(other, first)
    assert order != sorted(order)  # shuffled, not in member order


def test_sample_k_draws_distinct_members_and_covers_each_cycle():
    ens = Ensemble(members(3), sample=2, seed=5)
    draws = [ens._draw() for _ in range(6)]  # 12 picks = 4 cycles of 3
    assert all(len(set(d)) == 2 for d in draws)
    picks = [i for d in draws for i in d]
    assert all(picks.count(i) == 4 for i in range(3))
    ens.reset()
    assert [ens._draw() for _ in range(6)] == draws


@pytest.mark.parametrize("make", [
    lambda m: MIFGSM(m, EPS, steps=4),
    lambda m: create_attack("di", m, eps=EPS, steps=4, p=1.0, resize_rate=1.2, seed=0),
    lambda m: create_attack("mi-di", m, eps=EPS, steps=4, seed=0),
], ids=["mifgsm", "di", "mi-di"])
def test_mifgsm_and_di_on_a_sampled_ensemble(make, data):
    x, y = data
    ms, log = recorded(2)
    x_adv = make(Ensemble(ms, sample=1))(x, y)
    assert (x_adv - x).abs().max() <= EPS + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
    assert (x_adv != x).any()
    assert sorted(i for i, _ in log) == [0, 0, 1, 1]


@pytest.mark.parametrize("options", [{}, {"combine": "loss"}, {"sample": 1}])
def test_one_member_ensemble_attacks_like_the_model(options, data):
    x, y = data
    (m,) = members(1)
    expected = PGD(m, EPS, steps=5, seed=3)(x, y)
    got = PGD(Ensemble([m], **options), EPS, steps=5, seed=3)(x, y)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


def test_mode_and_requires_grad_restored(data):
    x, y = data
    ms, log = recorded(2)
    ens = Ensemble(ms, sample=1).train()
    assert all(m.training for m in ens.modules())
    ms[0].inner.head.weight.requires_grad_(False)
    flags = [p.requires_grad for p in ens.parameters()]
    PGD(ens, EPS, steps=2)(x, y)
    assert log and not any(training for _, training in log)  # attacked in eval mode
    assert all(m.training for m in ens.modules())
    assert [p.requires_grad for p in ens.parameters()] == flags
    assert all(p.grad is None for p in ens.parameters())
    ens.eval()
    assert not any(m.training for m in ens.modules())


def test_alpha_accepts_an_ensemble(data):
    x, _ = data
    result = alpha(Ensemble(members(2), sample=1), members(1)[0], x,
                   attack=AttackSpec("pgd", {"steps": 2}))
    assert result.n_used == len(x) and math.isfinite(result.alpha1)


def test_bad_arguments_are_named(data):
    ms = members(2)
    with pytest.raises(ValueError, match=r"models: .*models\[0\] has 4.*models\[1\] has 3"):
        Ensemble([ms[0], create_model("cnn", num_classes=3, width=4)])(data[0])
    with pytest.raises(ValueError, match="models: .* has"):  # also through an attack
        PGD(Ensemble([ms[0], create_model("cnn", num_classes=3, width=4)]), EPS)(*data)
    for sample in (0, 3, 1.0, True):
        with pytest.raises(ValueError, match="sample"):
            Ensemble(ms, sample=sample)
    with pytest.raises(ValueError, match="combine: .*logits, loss"):
        Ensemble(ms, combine="mean")
    with pytest.raises(ValueError, match="models: expected a non-empty"):
        Ensemble([])
    with pytest.raises(ValueError, match="models: expected a sequence"):
        Ensemble(ms[0])
    with pytest.raises(ValueError, match=r"models\[1\]: expected a torch.nn.Module"):
        Ensemble([ms[0], "cnn"])
    with pytest.raises(ValueError, match="different devices"):
        Ensemble([ms[0], create_model("cnn", num_classes=4, width=4).to("meta")])
    with pytest.raises(ValueError, match="seed"):
        Ensemble(ms, seed=-1)
