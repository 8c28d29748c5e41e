"""Fresh random draws per batch, reproducible: a seeded attack run over a dataset batch by
batch draws each batch's randomness from (seed, batch position) (``utils.batch_seed``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transferability.adversarial import attack_reference
from transferability.attacks import Attack, AttackSpec, AutoAttack, attack_batch, create_attack
from transferability.jobs import ResultStore
from transferability.models import Ensemble
from transferability.studies.audit import audit, audit_cell_job
from transferability.utils import batch_seed, batches

N = 6


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 3)).eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, 1, 12, 12, generator=g)
    return x, torch.arange(N) % 3


def twice(x, y):
    """The same images twice: batch 0 and batch 1 of a run with batch size N."""
    return torch.cat([x, x]), torch.cat([y, y])


def di(model, seed=3):
    # no random start: DI (one resize and pad per step and batch) is the only randomness
    return create_attack("di", model, eps=0.1, steps=5, p=1.0, seed=seed)


def test_batch_seed():
    assert batch_seed(7) == batch_seed(7, 0) == 7  # a single call keeps today's seed
    children = np.random.SeedSequence(7).spawn(3)
    assert [batch_seed(7, i) for i in (1, 2)] == [
        int(c.generate_state(1, np.uint64)[0]) for c in children[1:]]
    assert len({batch_seed(s, i) for s in (0, 1) for i in range(50)}) == 100
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="batch"):
            batch_seed(7, bad)


def test_seeded_di_draws_afresh_per_batch_and_reruns_identically(data):
    x, y = data
    attack = di(net(0))
    xx, yy = twice(x, y)

    def run(batch_size):
        return torch.cat([attack_batch(attack, xb, yb, i)
                          for i, (xb, yb) in enumerate(batches(xx, yy, batch_size=batch_size))])

    adv = run(N)
    gap = (adv[:N] - adv[N:]).abs().amax().item()
    assert gap > 0.01  # two identical batches, two different DI sequences
    assert torch.equal(adv, run(N))  # the whole run again: the same x_adv
    # schedule-free: batch 1 alone (a resumed or distributed run) is batch 1 of the run, and
    # batch 0 is a single call
    assert torch.equal(attack(x, y, batch=1), adv[N:])
    assert torch.equal(attack(x, y), adv[:N])
    # the draws belong to batches, not images: chunked as one batch, both copies get
    # batch 0's draws (results depend on the batch size, as documented)
    one = run(2 * N)
    torch.testing.assert_close(one[N:], one[:N], atol=1e-6, rtol=0)
    torch.testing.assert_close(one[:N], adv[:N], atol=1e-6, rtol=0)


def test_unseeded_and_foreign_attacks_ignore_the_batch(data):
    x, y = data
    torch.manual_seed(0)
    a = di(net(0), seed=None)(x, y, batch=5)
    torch.manual_seed(0)
    assert torch.equal(a, di(net(0), seed=None)(x, y))  # the global generator, as before
    calls = []
    assert attack_batch(lambda xb, yb: calls.append(len(xb)) or xb, x, y, 3) is x
    assert calls == [N]


def test_alpha_attack_draws_per_batch(data):
    x, _ = data
    xx = torch.cat([x, x])
    options = {"eps": 0.1, "steps": 5, "p": 1.0, "seed": 3}
    adv = attack_reference(net(0), xx, attack=AttackSpec("di", options),
                           batch_size=N)["adv"]
    assert (adv[:N] - adv[N:]).abs().amax() > 0.01
    assert torch.equal(adv, attack_reference(net(0), xx, attack=AttackSpec("di", options),
                                             batch_size=N)["adv"])


def test_ensemble_samples_members_per_batch():
    ens = Ensemble([net(i) for i in range(5)], sample=1, seed=2)

    def draws(batch):
        ens.reset(batch)
        return [ens._draw()[0] for _ in range(15)]

    assert draws(None) == draws(0)
    assert draws(1) != draws(0) and draws(2) != draws(1)
    assert draws(1) == draws(1)


class _Record(Attack):
    """Returns x; records the seed of each call's generator."""

    def perturb(self, x, y, generator):
        self.seeds.append(generator.initial_seed())
        return x


def test_attack_generator_and_autoattack_components_follow_the_batch(data, monkeypatch):
    x, y = data
    record = _Record(net(0), 0.1, seed=11)
    record.seeds = []
    record(x, y), record(x, y, batch=0), record(x, y, batch=4)
    assert record.seeds == [11, 11, batch_seed(11, 4)]
    with pytest.raises(ValueError, match="batch"):
        record(x, y, batch=-1)
    record.seeds = []
    monkeypatch.setattr(AutoAttack, "components", lambda self, c: {"record": record})
    AutoAttack(net(0), eps=0.1, seed=11, version="rand")(x, y, batch=4)
    assert record.seeds == [batch_seed(11, 4)]


def cell(model, victim, x, y, batch_size):
    class In:
        def __init__(self, artifact):
            self.artifact = artifact

    config = {"attack": {"name": "di", "options": {"eps": 0.1, "steps": 5, "p": 1.0},
                         "seed": 3},
              "quantize": False, "save_png": None, "batch_size": batch_size, "name": "di"}
    inputs = {"surrogate": In(model), "victim:v": In(victim), "x": In(x), "y": In(y)}
    return audit_cell_job(config, inputs).artifact


def test_audit_cell_draws_per_batch_and_reruns_identically(data):
    xx, yy = twice(*data)
    first = cell(net(0), net(1), xx, yy, N)
    l2 = first["stealth:l2"]
    assert (l2[:N] - l2[N:]).abs().max() > 1e-3  # the second batch drew other transforms
    again = cell(net(0), net(1), xx, yy, N)
    assert all(torch.equal(first[k], again[k]) for k in first)
    one = cell(net(0), net(1), xx, yy, 2 * N)["stealth:l2"]  # one batch: one draw for both
    torch.testing.assert_close(one[:N], one[N:], atol=1e-5, rtol=0)


def test_seeded_audit_reruns_to_the_same_numbers(data, tmp_path):
    xx, yy = twice(*data)

    def run(name):
        with ResultStore(tmp_path / name) as store:
            return audit({"a": net(0)}, {"v": net(1)}, xx, yy, ["di"], ensemble=False,
                         targeted_attack=None, seed=3, n_boot=200, batch_size=N, store=store,
                         shared={"eps": 0.1, "steps": 5, "p": 1.0},
                         show_progress=False)

    first, again = run("one.sqlite"), run("two.sqlite")  # two stores: both computed
    assert first.rows == again.rows and first.families == again.families
