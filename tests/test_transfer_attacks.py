"""The transfer attacks: each against a hand-written loop of its paper's update rule on a
tiny float64 residual net (same seed, same draws), plus their invariants."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.stats import norm as normal
from torch import nn

from transferability.attacks import (
    BSR,
    FIA,
    ILA,
    MIFGSM,
    NIFGSM,
    PGN,
    SGM,
    SI,
    SIA,
    SVRE,
    TI,
    VMIFGSM,
    VNIFGSM,
    Admix,
    LinBP,
    attack_info,
    create_attack,
    list_attacks,
    norms,
    random_targets,
)
from transferability.models import Ensemble

EPS, STEPS = 0.1, 3
ALPHA = EPS / STEPS


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.conv(self.relu(x)))


class Tiny(nn.Module):
    """stem → two residual blocks → pooled linear head, 3 classes."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block1, self.block2 = Block(4), Block(4)
        self.head = nn.Linear(4 * 16, 3)

    def forward(self, x):
        h = self.block2(self.block1(self.stem(x)))
        return self.head(F.adaptive_avg_pool2d(h, 4).flatten(1))


@pytest.fixture
def model():
    return Tiny().double().eval()


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 1, 8, 8, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 0])


def grad(model, x, y, through=lambda z: z):
    """∇ₓ of the summed cross-entropy of ``model(through(x))``."""
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(F.cross_entropy(model(through(x)), y, reduction="sum"), x)[0]


def l1(g):
    """The momentum's normalisation as in the authors' code: by the mean |g| (the paper's
    ‖g‖₁/d). The scale matters to NI's look-ahead ``x + α·μ·g``."""
    return g / g.abs().mean(dim=(1, 2, 3), keepdim=True)


def clip(x, xa, eps=EPS):
    return (x + (xa - x).clamp(-eps, eps)).clamp(0, 1)


def mi_loop(x, direction_fn, steps=STEPS, mu=1.0):
    """MI-FGSM by hand, the gradient from ``direction_fn(x_adv, g)``."""
    xa, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        g = mu * g + l1(direction_fn(xa, g))
        xa = clip(x, xa + ALPHA * g.sign())
    return xa


def close(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


# ---- gradient stabilisation -------------------------------------------------------------

def test_nifgsm_reference(model, data):
    x, y = data
    ref = mi_loop(x, lambda xa, g: grad(model, xa + ALPHA * g, y))
    close(NIFGSM(model, EPS, steps=STEPS)(x, y), ref)


@pytest.mark.parametrize("nesterov", [False, True])
def test_vmi_vni_reference(model, data, nesterov):
    x, y = data
    n, beta = 3, 1.5
    gen = torch.Generator().manual_seed(5)
    xa, g, v = x.clone(), torch.zeros_like(x), torch.zeros_like(x)
    for _ in range(STEPS):
        gr = grad(model, xa + ALPHA * g if nesterov else xa, y)
        g = g + l1(gr + v)
        noise = torch.rand((n, *x.shape), generator=gen, dtype=x.dtype)
        v = sum(grad(model, xa + (2 * noise[i] - 1) * beta * EPS, y) for i in range(n)) / n - gr
        xa = clip(x, xa + ALPHA * g.sign())
    cls = VNIFGSM if nesterov else VMIFGSM
    close(cls(model, EPS, steps=STEPS, samples=n, seed=5)(x, y), xa)
    # the neighbours in chunks of one give the same result
    close(cls(model, EPS, steps=STEPS, samples=n, seed=5, copies_batch=1)(x, y), xa)


def test_pgn_reference(model, data):
    x, y = data
    n, zeta, delta = 2, 3.0, 0.5
    gen = torch.Generator().manual_seed(2)

    def averaged(xa, g):
        noise = torch.rand((n, *x.shape), generator=gen, dtype=x.dtype)
        total = 0
        for i in range(n):
            near = xa + (2 * noise[i] - 1) * zeta * EPS
            g1 = grad(model, near, y)
            g2 = grad(model, near - ALPHA * g1 / g1.abs().mean(dim=(1, 2, 3), keepdim=True), y)
            total = total + (1 - delta) * g1 + delta * g2
        return total / n

    close(PGN(model, EPS, steps=STEPS, samples=n, seed=2)(x, y), mi_loop(x, averaged))


# ---- input transformations --------------------------------------------------------------

def test_ti_kernel_and_smoothing(model, data):
    ti = TI()
    assert (ti.size_for(299), ti.size_for(224), ti.size_for(28)) == (15, 11, 3)
    assert TI(reference_size=None).size_for(28) == 15
    taps = np.linspace(-3, 3, 7)
    kernel = np.outer(normal.pdf(taps), normal.pdf(taps))
    kernel /= kernel.sum()
    g = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    by_hand = np.stack([[ndimage.correlate(g[i, c].numpy(), kernel, mode="constant")
                         for c in range(3)] for i in range(2)])
    np.testing.assert_allclose(TI(kernel_size=7, reference_size=None)(g).numpy(), by_hand,
                               atol=1e-12)
    x, y = data
    t = TI(kernel_size=3, reference_size=None)
    ref = mi_loop(x, lambda xa, g: t(grad(model, xa, y)))
    close(create_attack("ti", model, eps=EPS, steps=STEPS, kernel_size=3,
                        reference_size=None)(x, y), ref)


def test_si_ni_reference(model, data):
    x, y = data

    def scaled(xa, g):
        point = xa + ALPHA * g
        return sum(grad(model, point, y, lambda z, i=i: z / 2 ** i) for i in range(5)) / 5

    ref = mi_loop(x, scaled)
    attack = create_attack("si", model, eps=EPS, steps=STEPS)
    assert isinstance(attack, NIFGSM) and isinstance(attack.input_transform, SI)
    close(attack(x, y), ref)
    close(create_attack("si", model, eps=EPS, steps=STEPS, copies_batch=2)(x, y), ref)


def test_admix_reference(model, data):
    x, y = data
    gen = torch.Generator().manual_seed(4)

    def admixed(xa, g):
        partners = [xa[torch.randperm(len(x), generator=gen)] for _ in range(3)]
        return sum(grad(model, xa, y, lambda z, i=i, p=p: (z + 0.2 * p) / 2 ** i)
                   for i in range(5) for p in partners) / 15

    close(create_attack("admix", model, eps=EPS, steps=STEPS, seed=4)(x, y),
          mi_loop(x, admixed))


@pytest.mark.parametrize("transform", [SIA(copies=3), BSR(copies=3)])
def test_block_transforms_average_over_copies(model, data, transform):
    """MI-FGSM with SIA / BSR = the momentum loop on the gradient averaged copy by copy."""
    x, y = data
    gen = torch.Generator().manual_seed(6)

    def averaged(xa, g):
        xa = xa.detach().requires_grad_(True)
        copies = transform(xa, gen).split(len(x))
        assert len(copies) == 3 and all(c.shape == x.shape for c in copies)
        total = 0
        for c in copies:
            total = total + torch.autograd.grad(
                F.cross_entropy(model(c), y, reduction="sum"), xa, retain_graph=True)[0]
        return total / 3

    ref = mi_loop(x, averaged)
    close(MIFGSM(model, EPS, steps=STEPS, seed=6, input_transform=transform)(x, y), ref)
    close(MIFGSM(model, EPS, steps=STEPS, seed=6, input_transform=transform,
                 copies_batch=2)(x, y), ref)


def test_bsr_without_rotation_permutes_pixels():
    x = torch.rand(2, 3, 9, 9)
    out = BSR(copies=2, blocks=3, max_angle=0)(x, torch.Generator().manual_seed(0))
    for copy_ in out.split(2):
        for i in range(2):
            torch.testing.assert_close(copy_[i].flatten().sort().values,
                                       x[i].flatten().sort().values)


def test_admix_copies_and_compose():
    x = torch.rand(3, 1, 8, 8)
    assert Admix()(x, torch.Generator().manual_seed(0)).shape == (45, 1, 8, 8)
    di_si = create_attack("si", nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), eps=0.1,
                          p=1.0, resize_rate=1.1)
    assert len(di_si.input_transform.transforms) == 2


# ---- model-specific gradients -------------------------------------------------------------

class _Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, k):
        ctx.k = k
        return z.clone()

    @staticmethod
    def backward(ctx, g):
        return ctx.k * g, None


class _LinearReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        return g


def bim_loop(model, x, y):
    xa = x.clone()
    for _ in range(STEPS):
        xa = clip(x, xa + ALPHA * grad(model, xa, y).sign())
    return xa


def test_sgm_reference(model, data):
    x, y = data
    gamma = 0.3
    ref_model = copy.deepcopy(model)
    for block in (ref_model.block1, ref_model.block2):
        relu = block.relu
        block.relu = type("ScaledReLU", (nn.Module,), {
            "forward": lambda self, z, relu=relu: _Scale.apply(relu(z), gamma)})()
    close(SGM(model, EPS, steps=STEPS, gamma=gamma, blocks="all")(x, y),
          bim_loop(ref_model, x, y))
    # the default skips the model's first block, as the authors' current code does
    assert SGM(model, EPS).blocks == ["block2"]
    assert SGM(model, EPS, blocks="all").blocks == ["block1", "block2"]
    ref_model.block1.relu = model.block1.relu
    close(SGM(model, EPS, steps=STEPS, gamma=gamma)(x, y), bim_loop(ref_model, x, y))
    with pytest.raises(ValueError, match="blocks: Sequential has no residual blocks"):
        SGM(nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.ReLU()), EPS)
    with pytest.raises(ValueError, match="blocks: 'nope' is not a module"):
        SGM(model, EPS, blocks=["nope"])


def test_linbp_reference(model, data):
    x, y = data
    ref_model = copy.deepcopy(model)
    ref_model.block2.relu = type("LinReLU", (nn.Module,), {
        "forward": lambda self, z: _LinearReLU.apply(z)})()
    attack = LinBP(model, EPS, steps=STEPS)
    assert attack.blocks == ["block2"]
    close(attack(x, y), bim_loop(ref_model, x, y))


# ---- feature-level ----------------------------------------------------------------------

def features(model, x):
    return model.block1(model.stem(x)).flatten(1)


def test_ila_reference(model, data):
    x, y = data
    x_base = bim_loop(model, x, y)
    with torch.no_grad():
        f0 = features(model, x)
        guide = features(model, x_base) - f0
        guide = guide / guide.norm(dim=1, keepdim=True)
    xa = x.clone()
    for _ in range(STEPS):
        xr = xa.detach().requires_grad_(True)
        loss = ((features(model, xr) - f0) * guide).sum()
        xa = clip(x, xa + ALPHA * torch.autograd.grad(loss, xr)[0].sign())
    close(ILA(model, EPS, steps=STEPS, base_steps=STEPS, layer="block1")(x, y), xa)
    with pytest.raises(ValueError, match="layer: 'nope' is not a module of Tiny"):
        ILA(model, EPS, layer="nope")


def test_fia_reference(model, data):
    x, y = data
    n, drop = 3, 0.3
    gen = torch.Generator().manual_seed(8)
    masks = torch.rand((n, *x.shape), generator=gen, dtype=x.dtype) >= drop
    total = 0
    for i in range(n):
        f = model.block1(model.stem(x * masks[i]))
        head = model.head(F.adaptive_avg_pool2d(model.block2(f), 4).flatten(1))
        total = total + torch.autograd.grad(head.gather(1, y[:, None]).sum(), f)[0].flatten(1)
    weights = total / total.norm(dim=1, keepdim=True)

    def direction(xa, g):
        xr = xa.detach().requires_grad_(True)
        return torch.autograd.grad(-(features(model, xr) * weights).sum(), xr)[0]

    attack = FIA(model, EPS, steps=STEPS, layer="block1", copies=n, drop=drop, seed=8)
    close(attack(x, y), mi_loop(x, direction))


# ---- ensembles ---------------------------------------------------------------------------

def test_svre_reference(data):
    x, y = data
    members = [Tiny(seed=s).double().eval() for s in (0, 1)]
    ensemble = Ensemble(members)
    inner_steps = 3
    gen = torch.Generator().manual_seed(9)

    def variance_reduced(xa, g):
        at_start = [grad(m, xa, y) for m in members]
        g_ens = sum(at_start) / 2
        inner, big_g = xa.clone(), torch.zeros_like(x)
        for _ in range(inner_steps):
            k = int(torch.randint(0, 2, (), generator=gen))
            gk = grad(members[k], inner, y) - (at_start[k] - g_ens)
            big_g = big_g + l1(gk)
            inner = clip(x, inner + ALPHA * big_g.sign())
        return big_g

    attack = SVRE(ensemble, EPS, steps=STEPS, inner_steps=inner_steps, seed=9)
    close(attack(x, y), mi_loop(x, variance_reduced))
    assert SVRE(ensemble, EPS).inner_steps == 8  # 4K
    with pytest.raises(ValueError, match="model: SVRE attacks an Ensemble"):
        SVRE(members[0], EPS)


# ---- targeted ------------------------------------------------------------------------------

def test_logit_loss_and_random_targets(model, data):
    x, y = data
    targets = random_targets(y, 3, seed=0)
    assert (targets != y).all() and torch.equal(targets, random_targets(y, 3, seed=0))
    many = random_targets(torch.zeros(3000, dtype=torch.long), 4, seed=1)
    counts = torch.bincount(many, minlength=4)
    assert counts[0] == 0 and (counts[1:] > 900).all()
    attack = MIFGSM(model, EPS, steps=STEPS, targeted=True, loss="logit")
    xr = x.clone().requires_grad_(True)
    by_hand = torch.autograd.grad(model(xr).gather(1, targets[:, None]).sum(), xr)[0]
    close(attack.gradient(x, targets), by_hand)
    with pytest.raises(ValueError, match="y: a targeted attack needs the target classes"):
        attack(x)


# ---- invariants of every registered attack ---------------------------------------------------

def _options(name):
    """A cheap run of ``name``: its registry entry's ``quick`` options and steps, the layer
    of the feature-level attacks."""
    info = attack_info(name)
    return {**info.quick, **({"steps": 2} if info.takes_steps else {}),
            **({"layer": "block1"} if name in ("ila", "fia") else {})}


@pytest.mark.parametrize("name", list_attacks())
def test_invariants_after_quantisation(model, data, name):
    if name == "apgd-t":
        pytest.skip("APGD-T's targeted DLR needs 4 classes; this model has 3")
    x, y = data
    x = torch.round(x * 255) / 255
    target = Ensemble([model]) if attack_info(name).needs_ensemble else model
    params = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    x_adv = create_attack(name, target, eps=EPS, seed=0, **_options(name))(x, y)
    q = norms.quantize(x, x_adv, EPS, "linf")
    assert torch.equal(q, torch.round(q * 255) / 255)
    assert ((q - x).abs().amax() <= EPS + 1e-12) and q.min() >= 0 and q.max() <= 1
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(v, params[k]) for k, v in model.state_dict().items())


def test_unknown_option_is_refused(model):
    with pytest.raises(ValueError, match="attack: cannot build 'sia'.*'blocksize'"):
        create_attack("sia", model, eps=EPS, blocksize=3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_on_cuda_matches_cpu(model, data, name):
    """Same seed, same draws on either device (float64): the same x_adv up to rounding."""
    if name == "apgd-t":
        pytest.skip("APGD-T's targeted DLR needs 4 classes; this model has 3")
    x, y = data
    out = {}
    for device in ("cpu", "cuda"):
        m = copy.deepcopy(model).to(device)
        target = Ensemble([m]) if attack_info(name).needs_ensemble else m
        attack = create_attack(name, target, eps=EPS, seed=0, **_options(name))
        out[device] = attack(x.to(device), y.to(device))
    assert out["cuda"].is_cuda
    assert ((out["cuda"] - x.cuda()).abs().amax() <= EPS + 1e-9)
    if not attack_info(name).randomized:
        # deterministic attacks (no random draws) agree across devices
        torch.testing.assert_close(out["cuda"].cpu(), out["cpu"], rtol=0, atol=1e-6)
