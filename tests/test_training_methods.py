"""Training methods against hand-written references: SAM/ASAM steps, LGV collection, early
stopping, the gradient-alignment penalty; their configs in the zoo's cache key."""

import copy

import pytest
import torch
import torch.nn.functional as F

from transferability.models import create_model
from transferability.training import (
    LSAM_RHO,
    EarlyStopping,
    ModelPair,
    alignment_penalty,
    check_fit_options,
    create_training_method,
    fit,
    lgv_members,
    list_training_methods,
)
from transferability.zoo import load_spec


def _tiny(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Flatten(), torch.nn.Linear(16, 6)]
    layers += [torch.nn.BatchNorm1d(6)] if bn else []
    layers += [torch.nn.Tanh(), torch.nn.Linear(6, 3)]
    return torch.nn.Sequential(*layers)


def _batch(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _sam_by_hand(model, x, y, rho, lr, adaptive=False):
    """Foret et al. Alg. 1 (and ASAM), one step of plain SGD, written out."""
    params = list(model.parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    if adaptive:
        t_g = [p.abs() * g for p, g in zip(params, grads, strict=True)]
        norm = torch.sqrt(sum((v ** 2).sum() for v in t_g))
        eps = [rho * p.abs() * v / norm for p, v in zip(params, t_g, strict=True)]
    else:
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        eps = [rho * g / norm for g in grads]
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        for p, e in zip(shifted.parameters(), eps, strict=True):
            p.add_(e)
    grads = torch.autograd.grad(F.cross_entropy(shifted(x), y), list(shifted.parameters()))
    with torch.no_grad():
        return [p - lr * g for p, g in zip(params, grads, strict=True)]


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_step_equals_a_hand_written_two_step_sam(adaptive):
    x, y = _batch()
    model = _tiny()
    expected = _sam_by_hand(copy.deepcopy(model), x, y, rho=0.3, lr=0.1, adaptive=adaptive)
    fit(model, (x, y), method="sam", rho=0.3, adaptive=adaptive, epochs=1, lr=0.1, momentum=0,
        weight_decay=0, batch_size=len(x), schedule="constant", show_progress=False)
    for p, e in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p, e, rtol=1e-5, atol=1e-6)


def test_sam_updates_batchnorm_statistics_on_the_first_forward_only():
    x, y = _batch()
    model = _tiny(bn=True)
    reference = copy.deepcopy(model).train()
    with torch.no_grad():
        reference(x)  # one forward in train mode: what the statistics should become
    fit(model, (x, y), method="sam", rho=0.5, epochs=1, batch_size=len(x), show_progress=False)
    bn, ref_bn = model[2], reference[2]
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var)
    assert int(bn.num_batches_tracked) == 1


def test_method_configs_enter_the_cache_key():
    assert list_training_methods() == sorted(
        ["sgd", "sam", "lsam", "lgv", "gradient_alignment_penalty", "pgd_at", "cartl_fdm"])
    assert create_training_method("lsam").config() == {"method": "lsam", "rho": LSAM_RHO,
                                                       "adaptive": False}

    def key(train):
        return load_spec({"models": [{"name": "a", "arch": "mlp", "data": "digits",
                                      "train": train}]})[0].key

    assert key({"method": "sam"}) == key({"method": "sam", "rho": 0.05}) != key({})
    assert key({"method": "sam", "rho": 0.5}) != key({"method": "sam"})
    assert key({"method": "sgd"}) == key({})  # plain SGD keeps the keys of earlier zoos
    assert check_fit_options({"method": "lgv", "per_epoch": 2})["per_epoch"] == 2


def test_lgv_collects_per_epoch_copies_at_a_constant_rate(blobs):
    x, y = blobs
    model = create_model("mlp", num_classes=3)
    fit(model, (x, y), epochs=1, show_progress=False)
    start = copy.deepcopy(model.state_dict())
    history = fit(model, (x, y), method="lgv", per_epoch=3, epochs=2, lr=0.05, batch_size=30,
                  show_progress=False)
    members = history.extras["members"]
    assert len(members) == 6 and history.config["schedule"] == "constant"
    assert {r["lr"] for r in history.epochs} == {0.05}
    assert all(torch.equal(members[-1][k], v) for k, v in model.state_dict().items())
    assert not torch.equal(members[0]["head.weight"], start["head.weight"])
    assert not torch.equal(members[0]["head.weight"], members[1]["head.weight"])
    models = lgv_members(model, members)
    assert len(models) == 6 and all(not m.training for m in models)
    with pytest.raises(ValueError, match="per_epoch"):
        fit(model, (x, y), method="lgv", per_epoch=50, epochs=1, batch_size=60)
    with pytest.raises(ValueError, match="per_epoch"):
        create_training_method("lgv", per_epoch=0)


def test_early_stopping_stops_and_restores_the_best_epoch(blobs):
    x, y = blobs
    model = create_model("mlp", num_classes=3)
    stopper = EarlyStopping(monitor="loss", patience=1)
    # a rising learning rate makes the loss go up after a while
    history = fit(model, (x, y), epochs=30, lr=3.0, schedule="constant", test=(x, y),
                  callbacks=[stopper], show_progress=False)
    assert history.stopped_at is not None and history.stopped_at < 30
    assert history.stopped_at == stopper.best_epoch + 1
    losses = [r["loss"] for r in history.epochs]
    assert stopper.best == min(losses)
    from transferability.training import evaluate

    assert evaluate(model, (x, y))[1] == pytest.approx(stopper.best, rel=1e-5)
    with pytest.raises(ValueError, match="monitor"):
        fit(model, (x, y), epochs=1, callbacks=[EarlyStopping(monitor="accuracy")])
    with pytest.warns(FutureWarning, match="'eval_loss' is now 'loss'"):
        old = EarlyStopping(monitor="eval_loss")  # the name before History schema 2
    assert (old.monitor, old.mode) == ("loss", "min")
    assert EarlyStopping().monitor == "accuracy"


def test_alignment_penalty_reaches_the_weights_and_lowers_alignment(blobs):
    x, y = blobs
    torch.manual_seed(0)
    a, b = create_model("mlp", num_classes=3), create_model("cnn", num_classes=3)
    _, _, penalty = alignment_penalty(a, b, x[:32], y[:32])
    grads = torch.autograd.grad(penalty, [a.head.weight, b.head.weight])
    assert all(g.abs().sum() > 0 for g in grads)  # not detached, unlike .item()

    def trained(lam):
        torch.manual_seed(0)
        pair = ModelPair(create_model("mlp", num_classes=3), create_model("mlp", num_classes=3))
        fit(pair, (x, y), method="gradient_alignment_penalty", lam=lam, epochs=3,
            show_progress=False)
        return pair

    plain, penalised = trained(0.0), trained(5.0)
    cos = {}
    for name, pair in (("plain", plain), ("penalised", penalised)):
        cos[name] = float(alignment_penalty(pair.model_a, pair.model_b, x, y)[2].detach())
    assert cos["penalised"] < cos["plain"]


def test_bad_training_options():
    with pytest.raises(ValueError, match="rho"):
        create_training_method("sam", rho=0)
    with pytest.raises(ValueError, match="method"):
        create_training_method("adam")
    with pytest.raises(ValueError, match="lam"):
        create_training_method("gradient_alignment_penalty", lam=-1)
    with pytest.raises(ValueError, match="rhoo: unknown training option"):
        check_fit_options({"method": "sam", "rhoo": 1})
    pair = ModelPair(create_model("mlp", num_classes=3),
                     create_model("mlp", num_classes=3, image_size=16))
    with pytest.raises(ValueError, match="model_b"):
        fit(pair, (torch.rand(8, 1, 28, 28), torch.arange(8) % 3),
            method="gradient_alignment_penalty", epochs=1)
    with pytest.raises(ValueError, match="ModelPair"):
        fit(create_model("mlp", num_classes=3), (torch.rand(8, 1, 28, 28), torch.arange(8) % 3),
            method="gradient_alignment_penalty", epochs=1)
