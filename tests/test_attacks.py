"""Attacks: the invariants of issue 4, each checked on tiny models (16×16 inputs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferability.attacks import (
    DI,
    FGSM,
    MIFGSM,
    PGD,
    Attack,
    attack_info,
    create_attack,
    fgsm,
    list_attacks,
    margin,
    mifgsm,
    pgd,
)
from transferability.models import create_model

EPS = {"linf": 0.1, "l2": 1.0}


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """4 classes of 16×16 images: a brighter quadrant (0.6) on a 0.3 background, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = 0.3 + 0.05 * torch.rand(n, 1, 16, 16, generator=g)
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8] += 0.3
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained for a few seconds to ~100% on the synthetic task."""
    torch.manual_seed(0)
    model = create_model("cnn", num_classes=4, width=8)
    x, y = synthetic(256, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(3):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    model.eval()
    model.zero_grad(set_to_none=True)
    xt, yt = synthetic(64, seed=1)
    with torch.no_grad():
        assert (model(xt).argmax(1) == yt).float().mean() >= 0.95
    return model, xt, yt


@pytest.fixture
def bn_model():
    """An untrained ResNet with BatchNorm, small enough to attack in milliseconds."""
    torch.manual_seed(0)
    return create_model("resnet", num_classes=4, width=4)


@pytest.fixture
def batch():
    return synthetic(8, seed=2)


def success(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x_adv).argmax(1) != y).float().mean().item()


# ---- geometry --------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd", "mifgsm", "di", "mi-di"])
def test_inside_ball_and_image_range(bn_model, batch, name, norm):
    x, y = batch
    eps = EPS[norm]
    x_adv = create_attack(name, bn_model, eps=eps, norm=norm, seed=0, **(
        {} if name == "fgsm" else {"steps": 5}))(x, y)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all()
    assert size.max() > 0.5 * eps  # it did move
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_eps_zero_is_refused_like_any_radius_that_is_not_positive(bn_model):
    """One rule for ε (``check_eps``): an attack with ε = 0 does nothing, so it is refused."""
    for eps in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="^eps: expected a finite number > 0"):
            PGD(bn_model, eps=eps, steps=3)


# ---- the model is left as it was -----------------------------------------------------

@pytest.mark.parametrize("name", list_attacks())
def test_modes_flags_and_grads_restored(bn_model, batch, name):
    x, y = batch
    bn_model.train()
    bn_model.backbone[0][1].eval()  # a mixed state: one BN layer already in eval mode
    params = list(bn_model.parameters())
    params[0].requires_grad_(False)
    params[3].requires_grad_(False)
    existing = torch.full_like(params[5], 7.0)
    params[5].grad = existing.clone()
    modes = {n: m.training for n, m in bn_model.named_modules()}
    flags = [p.requires_grad for p in params]
    stats = {k: v.clone() for k, v in bn_model.state_dict().items()}

    from transferability.models import Ensemble

    info = attack_info(name)  # its cheap options and its needs, from its registry entry
    extra = {**info.quick, **({"layer": "backbone.2"} if name in ("ila", "fia") else {})}
    model = Ensemble([bn_model]) if info.needs_ensemble else bn_model
    steps = {"steps": 2} if info.takes_steps else {}
    create_attack(name, model, eps=0.1, **steps, **extra)(x, y)

    assert {n: m.training for n, m in bn_model.named_modules()} == modes
    assert [p.requires_grad for p in params] == flags
    assert all(p.grad is None for i, p in enumerate(params) if i != 5)
    assert torch.equal(params[5].grad, existing)
    for k, v in bn_model.state_dict().items():  # BN running statistics untouched
        assert torch.equal(v, stats[k]), k


def test_output_is_detached_and_input_untouched(bn_model, batch):
    x, y = batch
    x0 = x.clone()
    x_adv = PGD(bn_model, eps=0.1, steps=2)(x.requires_grad_(True), y)
    assert not x_adv.requires_grad and x_adv.grad_fn is None
    assert torch.equal(x.detach(), x0)


def test_works_inside_no_grad(bn_model, batch):
    x, y = batch
    with torch.no_grad():
        x_adv = PGD(bn_model, eps=0.1, steps=2, random_start=False)(x, y)
    assert not torch.equal(x_adv, x)


# ---- device --------------------------------------------------------------------------

def test_device_follows_model_cpu(bn_model, batch):
    x, y = batch
    assert PGD(bn_model, eps=0.1, steps=1)(x, y).device == torch.device("cpu")


@pytest.mark.cuda
def test_device_follows_model_cuda(bn_model, batch):
    x, y = batch
    model = bn_model.cuda()
    for name in ("pgd", "mi-di"):
        x_adv = create_attack(name, model, eps=0.1, steps=2, seed=0)(x, y)  # data on CPU
        assert x_adv.is_cuda and (x_adv.cpu() - x).abs().max() <= 0.1 + 1e-6
        again = create_attack(name, model, eps=0.1, steps=2, seed=0)(x, y)
        if name == "pgd":
            assert torch.equal(x_adv, again)
        else:  # DI's bilinear resize has a backward with atomic adds on CUDA: its order
            # varies, which flips the sign of some near-zero gradients
            assert (x_adv != again).float().mean() < 0.05


# ---- randomness ----------------------------------------------------------------------

@pytest.mark.parametrize("name,norm", [("pgd", "linf"), ("pgd", "l2"), ("di", "linf")])
def test_same_seed_same_result(bn_model, batch, name, norm):
    x, y = batch
    kw = {"eps": EPS[norm], "norm": norm, "steps": 3}
    if name == "di":
        kw["p"] = 0.7
    a = create_attack(name, bn_model, seed=3, **kw)
    first = a(x, y)
    assert torch.equal(first, a(x, y))  # each call draws afresh from the seed
    assert torch.equal(first, create_attack(name, bn_model, seed=3, **kw)(x, y))
    assert not torch.equal(first, create_attack(name, bn_model, seed=4, **kw)(x, y))


def test_random_start_is_uniform_in_ball(bn_model):
    x = torch.full((2000, 1, 2, 2), 0.5)
    from transferability.attacks.norms import random_start

    g = torch.Generator().manual_seed(0)
    d = random_start(x, 0.2, "linf", g) - x
    assert d.abs().max() <= 0.2 + 1e-6 and abs(d.mean()) < 0.01 and d.std() > 0.1
    d = (random_start(x, 0.2, "l2", g) - x).flatten(1).norm(dim=1)
    # radius of a uniform point in a 4-D ball: P(r <= t·ε) = t⁴
    assert d.max() <= 0.2 + 1e-6 and abs((d <= 0.1).float().mean() - 1 / 16) < 0.02


# ---- exactness against hand-written loops ----------------------------------------------

def hand_bim(model, x, y, eps, alpha, steps, norm="linf", decay=None):
    """The plain loop from tutorials: mean CE, backward, sign step, clip."""
    x_adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        if decay is not None:  # MI-FGSM momentum on the L1-normalised gradient
            g = decay * g + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)
            grad = g
        if norm == "linf":
            x_adv = x_adv.detach() + alpha * grad.sign()
            delta = torch.clamp(x_adv - x, -eps, eps)
        else:
            x_adv = x_adv.detach() + alpha * grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = x_adv - x
            delta = delta * (eps / delta.flatten(1).norm(dim=1)).clamp(max=1).view(-1, 1, 1, 1)
        x_adv = torch.clamp(x + delta, 0, 1).detach()
    return x_adv


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_without_random_start_equals_hand_loop(trained, norm):
    model, x, y = trained
    eps, alpha = (0.1, 0.02) if norm == "linf" else (1.0, 0.25)
    ours = PGD(model, eps, alpha, steps=7, norm=norm, random_start=False)(x, y)
    theirs = hand_bim(model, x, y, eps, alpha, 7, norm)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    assert (ours - x).abs().max() > 0.5 * alpha


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_steps_and_projections_keep_the_values(dtype):
    from transferability.attacks import norms

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 5, 5, generator=g, dtype=dtype)
    grad = torch.randn(x.shape, generator=g, dtype=dtype)
    grad[0, 0, :2] = 0
    v = x + 0.3 * torch.randn(x.shape, generator=g, dtype=dtype)
    assert torch.equal(norms.ascend(x, grad, 0.037, "linf"), x + 0.037 * grad.sign())
    assert torch.equal(norms.ascend(x, grad, 0.37, "l2"),
                       x + 0.37 * norms.step_direction(grad, "l2"))
    assert torch.equal(norms.clip(x, v, 0.1, "linf"), (x + (v - x).clamp(-0.1, 0.1)).clamp(0, 1))
    authors = torch.min(torch.max(v, x - 0.1), x + 0.1).clamp(0, 1)  # Croce & Hein's form
    assert torch.equal(norms.projector(x, 0.1, "linf")(v), authors)
    assert torch.allclose(authors, norms.clip(x, v, 0.1, "linf"), rtol=0, atol=1e-7)
    assert torch.equal(norms.projector(x, 0.5, "l2")(v), norms.clip(x, v, 0.5, "l2"))


def test_mifgsm_equals_hand_loop_and_bim_without_momentum(trained):
    model, x, y = trained
    ours = MIFGSM(model, 0.1, 0.02, steps=6, decay=1.0)(x, y)
    assert torch.allclose(ours, hand_bim(model, x, y, 0.1, 0.02, 6, decay=1.0), atol=1e-6)
    no_momentum = MIFGSM(model, 0.1, 0.02, steps=6, decay=0.0)(x, y)
    bim = PGD(model, 0.1, 0.02, steps=6, random_start=False)(x, y)
    assert torch.equal(no_momentum, bim)
    assert not torch.equal(ours, bim)


def test_fgsm_is_one_sign_step(trained):
    model, x, y = trained
    x_adv = FGSM(model, 0.05)(x, y)
    assert torch.allclose(x_adv, hand_bim(model, x, y, 0.05, 0.05, 1), atol=1e-6)


def test_functional_forms_match_classes(trained):
    model, x, y = trained
    assert torch.equal(fgsm(model, x, y, eps=0.1), FGSM(model, 0.1)(x, y))
    assert torch.equal(pgd(model, x, y, eps=0.1, steps=3, seed=1),
                       PGD(model, 0.1, steps=3, seed=1)(x, y))
    assert torch.equal(mifgsm(model, x, y, eps=0.1, steps=3), MIFGSM(model, 0.1, steps=3)(x, y))


def test_gradient_is_per_sample_sum(trained):
    """Summed loss: a sample's gradient does not depend on the rest of the batch."""
    model, x, y = trained
    a = PGD(model, 0.1)
    full = a.gradient(x[:6], y[:6])
    alone = torch.cat([a.gradient(x[i:i + 1], y[i:i + 1]) for i in range(6)])
    assert torch.allclose(full, alone, atol=1e-6, rtol=1e-4)


# ---- effectiveness -------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_white_box_pgd_succeeds_at_eps_03(trained, loss):
    model, x, y = trained
    x_adv = PGD(model, eps=0.3, alpha=0.05, steps=10, loss=loss, seed=0)(x, y)
    assert success(model, x_adv, y) >= 0.98
    assert success(model, FGSM(model, 0.02, loss=loss)(x, y), y) < 0.98


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_targeted_attack_reaches_target(trained, loss):
    model, x, y = trained
    target = (y + 1) % 4
    x_adv = PGD(model, eps=0.3, alpha=0.05, steps=10, targeted=True, loss=loss, seed=0)(x, target)
    with torch.no_grad():
        p_clean = model(x).softmax(1).gather(1, target[:, None])
        p_adv = model(x_adv).softmax(1).gather(1, target[:, None])
        hit = (model(x_adv).argmax(1) == target).float().mean()
    assert (p_adv > p_clean).all()
    assert hit >= 0.95


def test_margin_values():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]])
    assert torch.equal(margin(logits, torch.tensor([0, 0])), torch.tensor([1.0, -5.0]))


def test_predictions_are_attacked_when_asked(trained):
    model, x, y = trained
    with torch.no_grad():
        pred = model(x).argmax(1)
    wrong = (y + 2) % 4
    kw = {"eps": 0.1, "steps": 3, "seed": 0}
    expected = PGD(model, **kw)(x, pred)
    assert torch.equal(PGD(model, use_predictions=True, **kw)(x, wrong), expected)
    assert torch.equal(PGD(model, **kw)(x), expected)  # y=None: the predictions


# ---- DI composes with any attack ------------------------------------------------------

def test_di_transform_shapes_and_probability():
    x = torch.rand(3, 1, 20, 20)
    g = torch.Generator().manual_seed(0)
    assert DI(p=0.0)(x, g) is x
    out = DI(p=1.0, resize_rate=0.9)(x, g)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert DI(p=1.0, resize_rate=1.2)(x, g).shape == (3, 1, 24, 24)
    xs = x.requires_grad_(True)
    DI(p=1.0)(xs, g).sum().backward()
    assert xs.grad is not None and xs.grad.abs().sum() > 0


def test_di_composes_with_pgd_and_mifgsm(trained):
    model, x, y = trained
    di = create_attack("di", model, eps=0.1, steps=4, seed=0, p=1.0)
    assert isinstance(di, PGD) and not di.random_start and isinstance(di.input_transform, DI)
    assert di.input_transform.p == 1.0
    by_hand = PGD(model, 0.1, steps=4, random_start=False, seed=0, input_transform=DI(p=1.0))
    assert torch.equal(di(x, y), by_hand(x, y))
    assert not torch.equal(di(x, y), PGD(model, 0.1, steps=4, random_start=False)(x, y))
    mi_di = create_attack("mi-di", model, eps=0.1, steps=4, seed=0, resize_rate=1.1)
    assert isinstance(mi_di, MIFGSM) and mi_di.input_transform.resize_rate == 1.1
    assert (mi_di(x, y) - x).abs().max() <= 0.1 + 1e-6


# ---- bad input -----------------------------------------------------------------------

def test_bad_arguments(bn_model, batch):
    x, y = batch
    with pytest.raises(ValueError, match="eps"):
        PGD(bn_model, eps=-0.1)
    with pytest.raises(ValueError, match="norm"):
        PGD(bn_model, eps=0.1, norm="l1")
    with pytest.raises(ValueError, match="loss"):
        FGSM(bn_model, eps=0.1, loss="hinge")
    with pytest.raises(ValueError, match="steps"):
        PGD(bn_model, eps=0.1, steps=0)
    with pytest.raises(ValueError, match="alpha"):
        PGD(bn_model, eps=0.1, alpha=-1.0)
    with pytest.raises(ValueError, match="decay"):
        MIFGSM(bn_model, eps=0.1, decay=-1.0)
    with pytest.raises(ValueError, match="p"):
        DI(p=1.5)
    with pytest.raises(ValueError, match="model"):
        PGD(lambda t: t, eps=0.1)
    with pytest.raises(ValueError, match="use_predictions"):
        PGD(bn_model, eps=0.1, targeted=True, use_predictions=True)
    with pytest.raises(ValueError, match="attack: unknown value 'cw'.*bim, bsr, di, fab-t, fgsm"):
        create_attack("cw", bn_model, eps=0.1)


@pytest.mark.parametrize("kind", [FGSM, PGD])
def test_bad_inputs(bn_model, batch, kind):
    x, y = batch
    attack = kind(bn_model, eps=0.1)
    with pytest.raises(ValueError, match="x: values must lie in"):
        attack(x * 255, y)
    with pytest.raises(ValueError, match="x: expected images"):
        attack(x[0], y)
    # checked with the first gradient's forward pass (one wait for the device)
    with pytest.raises(ValueError, match="y: labels must be 0..3"):
        attack(x, y + 4)
    with pytest.raises(ValueError, match="y: labels must be >= 0, found -1"):
        attack(x, y - 1 - y.min())
    with pytest.raises(ValueError, match="model: outputs contain NaN or inf for 8 of 8"):
        kind(nn.Sequential(bn_model, nn.Hardtanh(float("nan"), 1.0)), eps=0.1)(x, y)
    with pytest.raises(ValueError, match="y: expected 8 labels"):
        attack(x, y[:3])
    with pytest.raises(ValueError, match="y: expected a 1-D integer tensor"):
        attack(x, y.float())
    with pytest.raises(ValueError, match="y: a targeted attack"):
        FGSM(bn_model, eps=0.1, targeted=True)(x)


def test_probability_outputs_warn(bn_model, batch):
    x, y = batch
    for kind in (FGSM, PGD):
        with pytest.warns(UserWarning, match="probabilities"):
            kind(nn.Sequential(bn_model, nn.Softmax(dim=1)), eps=0.1)(x, y)


def test_base_class_and_repr(bn_model, batch):
    x, y = batch
    with pytest.raises(NotImplementedError):
        Attack(bn_model, eps=0.1)(x, y)
    text = repr(create_attack("mi-di", bn_model, eps=0.1))
    assert text.startswith("MIFGSM(eps=0.1") and "DI(p=0.5" in text and "decay=1.0" in text


def _saturated_model():
    """A linear model whose logits reach the thousands: softmax saturates in float32, so
    cross-entropy input gradients are exactly zero for most inputs."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    with torch.no_grad():
        model[1].weight.mul_(2000)
    return model.eval()


def test_masked_gradients_warn_once_and_margin_loss_sees_through_them():
    import warnings

    from transferability.attacks import GradientMaskingWarning

    model = _saturated_model()
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    attack = PGD(model, eps=0.3, steps=5, random_start=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ce_adv = attack(x, y)
        attack(x, y)  # once per attack object
    masking = [w for w in caught if issubclass(w.category, GradientMaskingWarning)]
    assert len(masking) == 1 and "loss='margin'" in str(masking[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        margin_adv = PGD(model, eps=0.3, steps=5, random_start=False, loss="margin")(x, y)
    ce_rate = (model(ce_adv).argmax(1) != y).float().mean()
    margin_rate = (model(margin_adv).argmax(1) != y).float().mean()
    assert ce_rate < 0.5 and margin_rate == 1.0


def test_no_masking_warning_on_a_healthy_model():
    import warnings

    from transferability.attacks import GradientMaskingWarning

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    x = torch.rand(32, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        PGD(model, eps=0.1, steps=3)(x, model(x).argmax(1))
