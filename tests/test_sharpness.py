"""Weight-space sharpness against independent references: the exact Hessian of a tiny
network (``torch.autograd.functional.hessian`` on the flat parameter vector), a saddle
with a known diagonal Hessian, a Taylor expansion for random directions, and
``torch.optim.swa_utils.update_bn`` for the BatchNorm re-estimation."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from transferability.sharpness import (
    MEASURES,
    SharpnessResult,
    hessian_vector_product,
    sharpness,
)

N = 40


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def _bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(64, 3)).double()
    model.train()
    with torch.no_grad():  # running statistics that differ from x's own
        model(torch.rand(16, 1, 4, 4, dtype=torch.float64) * 0.5)
    return model


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    return (torch.rand(N, 1, 4, 4, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (N,), generator=g))


class Saddle(nn.Module):
    """Logits (3w₁² − w₂², 0, 0) with w = 0 and labels 0: the Hessian of the cross-entropy
    is (p₀ − 1)·diag(6, −2) = diag(−4, 4/3) (the gradient of the logit vanishes)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, x):
        z = (3 * self.w[0] ** 2 - self.w[1] ** 2).expand(len(x))
        return torch.stack([z, torch.zeros_like(z), torch.zeros_like(z)], dim=1)


def _exact(model, x, y):
    """(gradient, Hessian) of the mean cross-entropy over the trainable parameters, flat."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat([p.detach().flatten() for _, p in named])

    def loss(w):
        pieces = dict(zip([n for n, _ in named], w.split([p.numel() for _, p in named]),
                          strict=True))
        params = {n: pieces[n].view_as(p) for n, p in named}
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    grad = torch.autograd.functional.jacobian(loss, flat)
    return grad, torch.autograd.functional.hessian(loss, flat, vectorize=True)


def _flat(tensors):
    return torch.cat([t.flatten() for t in tensors])


def _direction(model, seed: int):
    """The documented direction: N(0, 1) per ≥2-D trainable parameter from a CPU generator
    seeded with ``seed``, each row/filter rescaled to the norm of the weights' one."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in model.parameters():
        if p.ndim < 2:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=g, dtype=p.dtype)
        rows = [di * (wi.norm() / di.norm()) for di, wi in zip(d, p.detach(), strict=True)]
        out.append(torch.stack(rows))
    return out


def test_hessian_vector_product_equals_exact_hessian_times_v(data):
    x, y = data
    model = _net()
    _, hessian = _exact(model, x, y)
    v = [torch.randn_like(p) for p in model.parameters()]
    hv = hessian_vector_product(model, x, y, v, batch_size=7)
    assert [h.shape for h in hv] == [p.shape for p in model.parameters()]
    torch.testing.assert_close(_flat(hv), hessian @ _flat(v), rtol=0, atol=1e-10)


def test_hessian_top_matches_the_largest_eigenvalue(data):
    x, y = data
    model = _net()
    top = torch.linalg.eigvalsh(_exact(model, x, y)[1])[-1].item()
    result = sharpness(model, x, y)
    assert result.converged and 1 < result.iterations <= 100
    assert result.value == pytest.approx(top, rel=1e-3)
    tight = sharpness(model, x, y, tol=1e-10, max_iter=1000)
    assert tight.value == pytest.approx(top, rel=1e-8)
    stopped = sharpness(model, x, y, max_iter=2, tol=1e-12)
    assert stopped.iterations == 2 and not stopped.converged


def test_hessian_top_is_the_largest_eigenvalue_not_the_largest_magnitude():
    x, y = torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long)
    result = sharpness(Saddle(), x, y, tol=1e-12)  # spectrum {−4, 4/3}: shifted by 4
    assert result.value == pytest.approx(4 / 3, rel=1e-9) and result.converged


def test_hessian_trace_agrees_with_the_exact_trace(data):
    x, y = data
    model = _net()
    trace = torch.trace(_exact(model, x, y)[1]).item()
    result = sharpness(model, x, y, "hessian_trace", samples=400, seed=3)
    assert result.samples == 400 and 0 < result.stderr < 0.2 * abs(trace)
    assert abs(result.value - trace) < 3 * result.stderr
    # Rademacher probes are exact on a diagonal Hessian: vᵀ diag(h) v = Σ hᵢ
    diagonal = sharpness(Saddle(), x[:5].float(), y[:5] * 0, "hessian_trace", samples=7)
    assert diagonal.value == pytest.approx(-4 + 4 / 3, abs=1e-12) and diagonal.stderr < 1e-12


def test_only_trainable_parameters_count(data):
    x, y = data
    model = _net()
    model[1].requires_grad_(False)  # a frozen "backbone"
    _, hessian = _exact(model, x, y)  # over the head's 21 parameters only
    assert hessian.shape == (21, 21)
    result = sharpness(model, x, y, tol=1e-10, max_iter=1000)
    assert result.parameters == 21
    assert result.value == pytest.approx(torch.linalg.eigvalsh(hessian)[-1].item(), rel=1e-8)
    v = [torch.randn_like(p) for p in model[3].parameters()]
    torch.testing.assert_close(_flat(hessian_vector_product(model, x, y, v)),
                               hessian @ _flat(v), rtol=0, atol=1e-10)
    assert sharpness(model, x, y, "random_weight", directions=2).parameters == 18


@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_batch_size_does_not_change_the_result(data, measure):
    x, y = data
    model = _net()
    small, full = (sharpness(model, x, y, measure, batch_size=b, samples=5, directions=3)
                   for b in (7, N))
    assert small.value == pytest.approx(full.value, rel=1e-10, abs=1e-12)
    assert small.loss == pytest.approx(full.loss, rel=1e-12)


def test_random_weight_follows_the_taylor_expansion(data):
    """One direction d at radius r: L(w + r·d) − L(w) = r·gᵀd + ½r²·dᵀHd + O(r³)."""
    x, y = data
    model = _net()
    grad, hessian = _exact(model, x, y)
    d = _flat(_direction(model, seed=5))
    assert d.norm() == pytest.approx(_flat([model[1].weight, model[3].weight]).norm().item())
    for r in (1e-3, 1e-4):
        value = sharpness(model, x, y, "random_weight", radius=r, directions=1, seed=5).value
        taylor = r * grad @ d + 0.5 * r ** 2 * d @ hessian @ d
        assert value == pytest.approx(taylor.item(), rel=10 * r)


def test_random_weight_is_quadratic_and_nonnegative_at_a_minimum():
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(120, 1, 4, 4, generator=g, dtype=torch.float64), \
        torch.randint(0, 3, (120,), generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()  # convex, not separable
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=200, tolerance_grad=1e-12,
                                  tolerance_change=0, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    assert torch.linalg.vector_norm(_exact(model, x, y)[0]) < 1e-8
    values = [sharpness(model, x, y, "random_weight", radius=r, directions=5).value
              for r in (1e-3, 2e-3, 0.1)]
    assert min(values) > 0
    assert values[1] / values[0] == pytest.approx(4, rel=1e-3)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_model_is_left_as_it_was(data):
    x, y = data
    model = _bn_net()
    model[4].bias.requires_grad_(False)
    model[1].momentum = 0.3
    model[3].eval()  # mixed modes must come back per submodule
    before, modes = _state(model), [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    for measure in MEASURES:
        sharpness(model, x, y, measure, samples=3, directions=3, max_iter=3)
    hessian_vector_product(model, x, y, [torch.ones_like(p) for p in model.parameters()
                                         if p.requires_grad])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit for bit
    assert [m.training for m in model.modules()] == modes and model[1].momentum == 0.3
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_batchnorm_statistics_are_reestimated_like_update_bn(data):
    x, y = data
    model = _bn_net().eval()
    result = sharpness(model, x, y, "random_weight", radius=0.3, directions=1, seed=9)

    def reestimated_loss(params):
        copy_ = copy.deepcopy(model)
        with torch.no_grad():
            for p, q in zip(copy_.parameters(), params, strict=True):
                p.copy_(q)
        torch.optim.swa_utils.update_bn([x], copy_)
        with torch.no_grad():
            return F.cross_entropy(copy_.eval()(x), y).item()

    w = [p.detach() for p in model.parameters()]
    moved = [p + 0.3 * d for p, d in zip(w, _direction(model, seed=9), strict=True)]
    expected = reestimated_loss(moved) - reestimated_loss(w)
    assert result.value == pytest.approx(expected, rel=1e-10)
    with torch.no_grad():
        as_given = F.cross_entropy(model(x), y).item()
    assert result.loss == pytest.approx(as_given, rel=1e-12)
    assert abs(as_given - reestimated_loss(w)) > 1e-3  # the re-estimation mattered


def test_a_scaled_up_last_layer_is_sharper(data):
    x, y = data
    flat, sharp = _net(), _net()
    with torch.no_grad():
        sharp[3].weight.mul_(3)
    for measure in MEASURES:
        assert sharpness(flat, x, y, measure).value < sharpness(sharp, x, y, measure).value, \
            measure


def test_seeded_reproducible_and_round_trips(data):
    x, y = data
    model = _net()
    a, b, c = (sharpness(model, x, y, "hessian_trace", samples=5, seed=s) for s in (1, 1, 2))
    assert a == b and a.value != c.value
    for measure in MEASURES:
        result = sharpness(model, x, y, measure, samples=3, directions=3)
        data_ = json.loads(json.dumps(result.to_dict()))
        assert data_["type"] == "SharpnessResult" and SharpnessResult.from_dict(data_) == result
        assert float(result) == result.value and result.measure == measure


def _no_trainable():
    model = _net()
    model.requires_grad_(False)
    return model


def _nan_model():
    model = _net()
    with torch.no_grad():
        model[3].weight[0, 0] = float("nan")
    return model


BAD = [
    ("measure", {"measure": "flatness"}),
    ("max_iter", {"max_iter": 0}),
    ("tol", {"tol": 0}),
    ("tol", {"tol": -1e-3}),
    ("samples", {"samples": 0}),
    ("radius", {"radius": 0}),
    ("radius", {"radius": float("nan")}),
    ("radius", {"measure": "random_weight", "radius": 1e308}),
    ("directions", {"directions": 0}),
    ("seed", {"seed": -1}),
    ("batch_size", {"batch_size": 0}),
    ("x", {"x": torch.rand(N, 16, dtype=torch.float64)}),
    ("x", {"x": torch.rand(N, 1, 4, 4, dtype=torch.float64) * 2}),
    ("x", {"x": torch.rand(0, 1, 4, 4, dtype=torch.float64)}),
    ("y", {"y": torch.zeros(N - 1, dtype=torch.long)}),
    ("y", {"y": torch.full((N,), 3)}),
    ("y", {"y": torch.zeros(N)}),
    ("model", {"model": "cnn"}),
    ("model", {"model": _no_trainable()}),
    ("model", {"model": _nan_model()}),
    ("model", {"model": Saddle(), "measure": "random_weight"}),
]


@pytest.mark.parametrize("name, bad", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_input_names_the_argument(data, name, bad):
    x, y = data
    call = {"model": _net(), "x": x, "y": y, **bad}
    model, x, y = call.pop("model"), call.pop("x"), call.pop("y")
    with pytest.raises(ValueError, match=rf"^{name}: "):
        sharpness(model, x, y, **call)


def test_bad_vector_names_the_argument(data):
    x, y = data
    model = _net()
    for vector in ([torch.ones(3)], torch.ones(123), [torch.ones_like(p) for p in
                                                        model.parameters()][:-1]):
        with pytest.raises(ValueError, match="^vector: "):
            hessian_vector_product(model, x, y, vector)
    with pytest.raises(ValueError, match="^model: "):
        hessian_vector_product(_nan_model(), x, y, [torch.ones_like(p) for p in
                                                   model.parameters()])
    assert math.isfinite(_flat(hessian_vector_product(
        model, x.float(), y, [torch.ones_like(p) for p in model.parameters()])).sum().item())
