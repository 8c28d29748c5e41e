"""fine_tune: freeze levels, LwF (Shafahi et al. 2020), NEFT and BatchNorm freezing (Chen et
al. 2021), each checked against an independent reference."""

import copy
import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from transferability import transfer
from transferability.models import create_model
from transferability.models.classifier import Classifier, replace_head
from transferability.training import Snapshot, fit
from transferability.transfer import FineTuneResult, fine_tune
from transferability.transfer.lwf import LwF
from transferability.transfer.neft import NonExpansive, apply_neft, bake_neft, operator_norm
from transferability.utils import seed_everything

BETA = 0.5
LAYERS = (nn.Conv2d, nn.Linear)


def _source(arch, x, y, **options):
    torch.manual_seed(0)
    model = create_model(arch, 3, **options)
    fit(model, (x, y), epochs=3, batch_size=32, lr=0.05)
    return model.eval()


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _changed(before, after, keys):
    return {k for k in keys if not torch.equal(before[k], after[k])}


def _input_shapes(model, x):
    """The input shape (1, C, H, W) or (1, D) of every Conv2d and Linear, by one forward."""
    shapes = {}
    hooks = [m.register_forward_pre_hook(
        lambda m, args: shapes.setdefault(m, (1, *args[0].shape[1:])) and None)
        for m in model.modules() if isinstance(m, LAYERS)]
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return shapes


def _reference_norm(layer, shape, iters=200):
    """σ of the layer's own linear map (no bias) by power iteration on AᵀA, the adjoint from
    autograd (torch.func.vjp), in float64."""
    w = layer.weight.detach().double()
    if isinstance(layer, nn.Conv2d):
        def a(t):
            return F.conv2d(t, w, None, layer.stride, layer.padding, layer.dilation,
                            layer.groups)
    else:
        def a(t):
            return t @ w.T
    v = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for _ in range(iters):
        out, vjp = torch.func.vjp(a, v)
        (v,) = vjp(out)
        v = v / v.norm()
    return a(v).norm().item()


class _Net(nn.Module):
    """Not a Classifier: blocks are ``conv`` and ``hidden``, ``fc`` is the head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(4 * 13 * 13, 16), nn.ReLU())
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(self.hidden(self.conv(x)))


@pytest.mark.parametrize("freeze, trained", [(None, {0, 1, 2}), (0, {0, 1, 2}), (2, {1, 2}),
                                             (3, {0, 1, 2}), ("all", set())])
def test_freeze_levels_train_exactly_their_blocks_and_leave_the_source_alone(
        blobs, freeze, trained):
    x, y = blobs
    source = _source("cnn", x, y, width=8)
    source.backbone[0].train()  # mixed modes and flags must survive
    source.backbone[0][0].bias.requires_grad_(False)
    state = _state(source)
    modes = [m.training for m in source.modules()]
    flags = [p.requires_grad for p in source.parameters()]
    result = fine_tune(source, (x, y % 2), epochs=1, batch_size=32, freeze=freeze)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in state.items())
    assert modes == [m.training for m in source.modules()]
    assert flags == [p.requires_grad for p in source.parameters()]
    tuned = result.model
    assert tuned.num_classes == 2 and math.isnan(result.accuracy)
    assert result.config["freeze"] == (None if freeze in (None, 0) else freeze)
    after = tuned.state_dict()
    for block in range(3):
        keys = [k for k in state if k.startswith(f"backbone.{block}.")]
        changed = _changed(state, after, keys)
        assert changed == (set(keys) if block in trained else set()), (block, changed)


def test_freeze_counts_top_level_children_of_other_models(blobs):
    x, y = blobs
    net = _Net()
    state = _state(net)
    tuned = fine_tune(net, (x, y % 2), epochs=1, batch_size=32, freeze=1).model
    assert tuned.fc.out_features == 2 and net.fc.out_features == 3
    after = tuned.state_dict()
    assert not _changed(state, after, ["conv.0.weight", "conv.0.bias"])
    assert _changed(state, after, ["hidden.0.weight", "hidden.0.bias"]) == {
        "hidden.0.weight", "hidden.0.bias"}
    with pytest.raises(ValueError, match="^freeze"):
        fine_tune(net, (x, y % 2), freeze=3)


def test_freeze_all_is_head_only_training(blobs):
    x, y = blobs
    source = _source("cnn", x, y, width=8)
    result = fine_tune(source, (x, y % 2), freeze="all", epochs=2, batch_size=32, seed=3)
    seed_everything(3)
    reference = replace_head(copy.deepcopy(source), 2)
    fit(reference, (x, y % 2), params=reference.head.parameters(), epochs=2, lr=0.01,
        momentum=0.9, weight_decay=5e-4, batch_size=32, seed=3)
    torch.testing.assert_close(result.model.head.weight, reference.head.weight)
    torch.testing.assert_close(result.model.head.bias, reference.head.bias)


def test_lwf_loss_is_cross_entropy_plus_lam_times_mean_l1_feature_distance(blobs):
    x, y = blobs
    torch.manual_seed(0)
    source = Classifier(nn.Sequential(nn.Sequential(nn.Flatten(), nn.Linear(784, 6),
                                                    nn.Tanh())), 6, 3)
    model = copy.deepcopy(source)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    method = LwF(lam=0.3)
    xs, index = method.indexed(source, (x, y))
    assert torch.equal(xs, x) and torch.equal(index, torch.arange(len(y)))
    batch = torch.tensor([17, 3, 150, 64])  # any samples, in any order

    def features(m):
        lin = m.backbone[0][1]
        return torch.tanh(x[batch].flatten(1) @ lin.weight.T + lin.bias)

    phi, phi0 = features(model), features(source)
    logits = phi @ model.head.weight.T + model.head.bias
    expected = F.cross_entropy(logits, y[batch]) + 0.3 * (phi - phi0).abs().sum(1).mean()
    torch.testing.assert_close(method.loss(model, x[batch], batch), expected)

    with pytest.raises(ValueError, match="^train"):
        LwF().loss(model, x[:4], torch.arange(4))
    other = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(784, 5)), 5, 3)
    with pytest.raises(ValueError, match="^model"):
        method.loss(other, x[batch], batch)


def test_lwf_computes_the_source_features_once_and_keeps_features_close(blobs):
    x, y = blobs
    source = _source("cnn", x, y, width=8)
    calls = []
    hook = source.register_forward_hook(lambda m, args, out: calls.append(m))
    result = fine_tune(source, (x, y % 2), method="lwf", epochs=3, batch_size=32)
    hook.remove()
    # one extract batch (180 ≤ 256 samples) on the source; the copy (it inherited the
    # hook) ran every step
    assert sum(m is source for m in calls) == 1
    assert sum(m is result.model for m in calls) == 3 * math.ceil(len(y) / 32)
    assert {k: result.config[k] for k in ("lam", "warm_start", "reuse_bn_stats")} == {
        "lam": 0.005, "warm_start": 0.5, "reuse_bn_stats": True}

    def drift(lam):
        tuned = fine_tune(source, (x, y % 2), method="lwf", lam=lam, epochs=2,
                          batch_size=32, warm_start=0).model
        with torch.no_grad():
            return (tuned.features(x) - source.features(x)).abs().sum(1).mean().item()

    assert drift(0.005) < 0.5 * drift(0.0)  # their λ keeps the features close


def test_warm_start_trains_only_the_head_for_its_fraction_of_the_steps(blobs, monkeypatch):
    x, y = blobs
    source = _source("resnet", x, y, width=4)
    snapshots = Snapshot()
    monkeypatch.setattr(transfer, "fit", functools.partial(fit, callbacks=[snapshots]))
    fine_tune(source, (x, y % 2), epochs=4, warm_start=0.5, batch_size=32)  # 2 of 4 epochs
    state = source.state_dict()
    body = [k for k in state if k.startswith("backbone.")]  # BN statistics included
    states = snapshots.states
    assert not _changed(state, states[1], body) and not _changed(state, states[2], body)
    assert _changed(states[1], states[2], ["head.weight"])
    assert _changed(state, states[3], body)


@pytest.mark.parametrize("options", [{}, {"reuse_bn_stats": True}, {"freeze_bn": True}])
def test_batchnorm_options(blobs, options):
    x, y = blobs
    source = _source("resnet", x, y, width=4)
    state = _state(source)
    after = fine_tune(source, (x, y % 2), epochs=1, batch_size=32, **options).model.state_dict()
    bns = [n for n, m in source.named_modules() if isinstance(m, nn.BatchNorm2d)]
    stats = [f"{n}.{s}" for n in bns for s in ("running_mean", "running_var",
                                                "num_batches_tracked")]
    affine = [f"{n}.{s}" for n in bns for s in ("weight", "bias")]
    convs = [k for k in state if k.endswith("weight") and state[k].ndim == 4]
    assert bool(_changed(state, after, stats)) == (not options)
    assert bool(_changed(state, after, affine)) == (not options.get("freeze_bn"))
    assert _changed(state, after, convs)


@pytest.mark.parametrize("conv, shape", [
    ((2, 3, 3, 1, 1), (2, 5, 5)),
    ((2, 4, 3, 2, 0), (2, 6, 6)),  # stride 2 on an even size: output_padding 1
    ((4, 4, 3, 2, 2, 2, 2), (4, 7, 8)),  # dilation 2, groups 2
    ((2, 3, 3, 1, "same"), (2, 4, 4)),
])
def test_conv_operator_norm_matches_the_full_matrix(conv, shape):
    torch.manual_seed(0)
    conv = nn.Conv2d(*conv)
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).view(n, *shape)
    matrix = F.conv2d(basis, conv.weight.double(), None, conv.stride, conv.padding,
                      conv.dilation, conv.groups).flatten(1).T
    expected = torch.linalg.matrix_norm(matrix, ord=2).item()
    assert operator_norm(conv, shape, iters=1000) == pytest.approx(expected, rel=1e-4)
    kernel = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item()
    assert abs(kernel - expected) > 0.05 * expected  # not the reshaped kernel's norm
    linear = nn.Linear(7, 5)
    assert operator_norm(linear) == pytest.approx(
        torch.linalg.matrix_norm(linear.weight, ord=2).item(), rel=1e-4)


def test_neft_makes_every_trained_layer_beta_lipschitz(blobs):
    x, y = blobs
    source = _source("cnn", x, y, width=8)
    result = fine_tune(source, (x, y % 2), epochs=2, batch_size=16, neft_beta=BETA, freeze=2)
    tuned = result.model
    assert not any(parametrize.is_parametrized(m) for m in tuned.modules())
    assert {type(m) for m in tuned.modules() if isinstance(m, LAYERS)} == set(LAYERS)
    assert torch.equal(tuned.backbone[0][0].weight, source.backbone[0][0].weight)  # frozen
    shapes = _input_shapes(tuned, x)
    layers = [m for b in tuned.backbone[1:] for m in b.modules() if isinstance(m, LAYERS)]
    norms = [_reference_norm(m, shapes[m]) for m in layers]
    assert len(norms) == 2 and all(BETA * (1 - 1e-2) <= s <= BETA * (1 + 1e-2) for s in norms)
    assert result.config["neft_beta"] == BETA


@pytest.mark.parametrize("layer, shape", [(nn.Linear(9, 5), None),
                                          (nn.Conv2d(2, 3, 3, 2, 1), (2, 7, 7))])
def test_nonexpansive_takes_one_power_iteration_step_per_training_forward(layer, shape):
    torch.manual_seed(0)
    param = NonExpansive(layer, BETA, input_shape=shape).eval()
    w = layer.weight.detach()
    param(w)  # the first forward starts the estimate, whatever the mode
    u, v = param.u, param.v
    torch.testing.assert_close(param(w), BETA * w / (u * param.linear_map(w, v)).sum())
    assert param.u is u and param.v is v  # no step in eval mode
    v1 = param.adjoint(w, u)
    v1 = v1 / v1.norm()
    u1 = param.linear_map(w, v1)
    u1 = u1 / u1.norm()
    out = param.train()(w)
    torch.testing.assert_close((param.u, param.v), (u1, v1))
    torch.testing.assert_close(out, BETA * w / (u1 * param.linear_map(w, v1)).sum())


def test_one_step_per_training_step_keeps_up_with_the_weights(blobs):
    """Without bake_neft's refinement the running estimate (a lower bound of σ that lags
    the weights, as in spectral normalisation) still keeps σ within a few percent of β."""
    x, y = blobs
    model = _source("cnn", x, y, width=8)
    layers = apply_neft(model.backbone, BETA)
    fit(model, (x, y), epochs=2, batch_size=16, lr=0.01)
    bake_neft(model, refine_iters=0)
    shapes = _input_shapes(model, x)
    norms = [_reference_norm(m, shapes[m]) for m in layers]
    assert len(norms) == 3 and all(s <= BETA * (1 + 3e-2) for s in norms), norms


def test_cartl_recipe_composes_with_lwf(blobs):
    """Last 3 of the resnet's 5 blocks, NEFT, frozen BatchNorm, LwF: all at once."""
    x, y = blobs
    source = _source("resnet", x, y, width=4)
    state = _state(source)
    result = fine_tune(source, (x, y % 2), (x, y % 2), method="lwf", freeze=3, neft_beta=BETA,
                       freeze_bn=True, epochs=1, batch_size=32)
    tuned = result.model
    after = tuned.state_dict()
    frozen = [k for k in state if k.startswith(("backbone.0.", "backbone.1."))]
    bn = [k for k in state if ".bn" in k or "shortcut.1" in k]
    assert bn and not _changed(state, after, frozen + bn)
    assert not any(parametrize.is_parametrized(m) for m in tuned.modules())
    shapes = _input_shapes(tuned, x)
    norms = [_reference_norm(m, shapes[m]) for b in tuned.backbone[2:] for m in b.modules()
             if isinstance(m, LAYERS)]
    assert len(norms) == 6 and all(BETA * (1 - 1e-2) <= s <= BETA * (1 + 1e-2) for s in norms)
    assert 0 <= result.accuracy <= 1 and result.history.epochs
    data = result.to_dict()
    assert FineTuneResult.from_dict(json.loads(json.dumps(data))).to_dict() == data


def test_bad_inputs_name_the_argument(blobs):
    x, y = blobs
    data = (x[::6], y[::6])
    model = create_model("cnn", 3, width=4)  # 3 blocks
    cases = [({"freeze": 4}, "freeze"), ({"freeze": -1}, "freeze"), ({"freeze": 1.5}, "freeze"),
             ({"freeze": "some"}, "freeze"), ({"neft_beta": 0}, "neft_beta"),
             ({"neft_beta": -0.5}, "neft_beta"), ({"method": "lwf", "lam": -1}, "lam"),
             ({"method": "sam"}, "method"), ({"freeze": "all", "neft_beta": BETA}, "neft_beta"),
             ({"freeze": "all", "method": "lwf"}, "method"),
             ({"freeze": "all", "warm_start": 0.5}, "warm_start"),
             ({"warm_start": 1.0}, "warm_start"), ({"warm_start": -0.1}, "warm_start"),
             ({"layer": "backbone.1"}, "layer"), ({"method": "lwf", "layer": "nope"}, "layer"),
             ({"freeze_bn": "yes"}, "freeze_bn"), ({"reuse_bn_stats": 1}, "reuse_bn_stats"),
             ({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr")]
    for options, name in cases:
        with pytest.raises(ValueError, match=f"^{name}:"):
            fine_tune(model, data, **options)
    no_linear = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="^layer:"):
        fine_tune(no_linear, data, method="lwf")
    with pytest.raises(ValueError, match="^model:"):
        fine_tune(no_linear, data)
    with pytest.raises(ValueError, match="^model:"):
        fine_tune("resnet", data)
    # the resnet's last block is pooling: nothing to reparametrise
    with pytest.raises(ValueError, match="^neft_beta:"):
        fine_tune(create_model("resnet", 3, width=4), data, freeze=1, neft_beta=BETA)
