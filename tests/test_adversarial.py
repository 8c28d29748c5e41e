"""α1/α2 against closed forms on linear models and independent re-computations, both-ways
sharing, batching, the estimator hook, mode restoring and bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from transferability.adversarial import (
    alpha,
    alpha_attack,
    alpha_both_ways,
    alpha_to_many,
    attribution_affinity,
    gradient_alignment,
    linearized_alpha,
    model_scores,
)
from transferability.attacks import PGD, AttackSpec
from transferability.estimators import get_estimator, list_estimators
from transferability.models import create_model

H, W = 2, 3  # linear models act on 1×2×3 images, i.e. vectors in R^6
D = H * W


def linear(weight: np.ndarray) -> nn.Sequential:
    """f(x) = A·vec(x), no bias."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
    return nn.Sequential(nn.Flatten(), layer)


def top_singular_attack(eps: float):
    """The exact L2 attack on a linear model: δ = ε·v₁(A) maximises ‖A δ‖₂ for every x."""
    def factory(model):
        v1 = torch.linalg.svd(model[1].weight).Vh[0]
        return lambda x, y: x + eps * v1.view(1, 1, H, W)
    return factory


def predicted_logit_attack(eps: float):
    """Exact L2 attack lowering the predicted logit: δ = −ε·a_p/‖a_p‖ (varies with x)."""
    def factory(model):
        a = model[1].weight
        def attack(x, y):
            rows = a[y]
            return x - eps * (rows / rows.norm(dim=1, keepdim=True)).view(-1, 1, H, W)
        return attack
    return factory


def images(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Inputs around 0.5, so an ε = 0.1 step never leaves [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return (0.4 + 0.2 * torch.rand(n, 1, H, W, generator=g)).to(dtype)


def rng_matrix(rows: int, cols: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, cols))


def alpha_by_loop(d_gg: np.ndarray, d_gf: np.ndarray, d_ff: np.ndarray):
    """α1, α2², α12² with an explicit Python sum of outer products (the authors' way)."""
    n = len(d_gg)
    a1 = [np.linalg.norm(d_gf[i]) / np.linalg.norm(d_ff[i]) for i in range(n)]
    m2, m12 = np.zeros((d_gg.shape[1], d_gf.shape[1])), np.zeros((d_gg.shape[1], d_gf.shape[1]))
    for i in range(n):
        outer = np.outer(d_gg[i] / np.linalg.norm(d_gg[i]), d_gf[i] / np.linalg.norm(d_gf[i]))
        m2 += outer / n
        m12 += a1[i] * outer / n
    return float(np.mean(a1)), float((m2 ** 2).sum()), float((m12 ** 2).sum())


# --- closed forms on linear models -------------------------------------------------------


def test_linear_models_top_singular_direction_closed_form():
    a, b = rng_matrix(4, D, 1), rng_matrix(3, D, 2)  # f = A (4 outputs), g = B (3 outputs)
    x = images(9)
    res = alpha(linear(b), linear(a), x, attack=top_singular_attack(0.1))
    v1_b = np.linalg.svd(b)[2][0]
    expected_a1 = np.linalg.norm(a @ v1_b) / np.linalg.svd(a, compute_uv=False)[0]
    assert res.n_used == 9 and res.per_sample_alpha1.shape == (9,)
    assert res.alpha1 == pytest.approx(expected_a1, rel=1e-10)
    assert torch.allclose(res.per_sample_alpha1, torch.full((9,), expected_a1, dtype=torch.float64))
    # every sample has the same directions, so the mean outer product is a rank-1 unit matrix
    assert res.alpha2 == pytest.approx(1.0, rel=1e-10)
    assert res.alpha2_unsquared == pytest.approx(1.0, rel=1e-10)
    assert res.alpha12_squared == pytest.approx(expected_a1 ** 2, rel=1e-10)
    assert res.alpha12_unsquared == pytest.approx(expected_a1, rel=1e-10)
    # the Jacobian path of the theory module gives the same closed form
    lin = linearized_alpha(linear(b), linear(a), x.flatten(1))
    assert lin.alpha1 == pytest.approx(expected_a1, rel=1e-10)
    assert lin.alpha2 == pytest.approx(1.0, rel=1e-10)


def test_linear_models_per_sample_directions_match_loop():
    a, b = rng_matrix(5, D, 3), rng_matrix(4, D, 4)
    x = images(40, seed=1)
    f, g = linear(a), linear(b)
    for squared in (True, False):
        res = alpha(g, f, x, attack=predicted_logit_attack(0.1), squared=squared)
        xs = x.flatten(1).numpy()

        def direction(m, rows):
            return -0.1 * m[rows] / np.linalg.norm(m[rows], axis=1, keepdims=True)

        delta_g = direction(b, (xs @ b.T).argmax(1))
        delta_f = direction(a, (xs @ a.T).argmax(1))
        a1, a2, a12 = alpha_by_loop(delta_g @ b.T, delta_g @ a.T, delta_f @ a.T)
        assert res.alpha1 == pytest.approx(a1, rel=1e-10)
        assert res.alpha2_squared == pytest.approx(a2, rel=1e-10)
        assert res.alpha12_squared == pytest.approx(a12, rel=1e-10)
        assert res.alpha2 == pytest.approx(a2 if squared else np.sqrt(a2), rel=1e-10)
        assert res.alpha12 == pytest.approx(a12 if squared else np.sqrt(a12), rel=1e-10)
        assert 0 < a2 < 0.99  # the directions vary, so α2 is not trivially 1


def test_linear_model_with_itself_is_one():
    a = rng_matrix(4, D, 5)
    res = alpha(linear(a), linear(a), images(6), attack=top_singular_attack(0.1))
    for value in (res.alpha1, res.alpha2_squared, res.alpha2_unsquared, res.alpha12_squared,
                  res.alpha12_unsquared):
        assert value == pytest.approx(1.0, abs=1e-12)


# --- real models and the default attack ---------------------------------------------------


def tiny_cnn(num_classes: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("cnn", num_classes=num_classes, width=4).eval()


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 1, 16, 16, generator=g)
    return tiny_cnn(10, seed=0), tiny_cnn(5, seed=1), x


def test_model_with_itself_alpha1_is_one_and_alpha2_matches_gram(pair):
    model, _, x = pair
    res = alpha(model, model, x, attack=AttackSpec("pgd", {"steps": 3}))
    assert torch.equal(res.per_sample_alpha1, torch.ones(len(x), dtype=torch.float64))
    assert res.alpha1 == 1.0
    # independent recomputation: α2² = mean_ij (ûᵢ·ûⱼ)², with Δ from the same attack
    x_adv = PGD(model, 0.1, 0.02, 3, use_predictions=True, seed=0)(x)
    with torch.no_grad():
        delta = (model(x_adv) - model(x)).double()
    u = delta / delta.norm(dim=1, keepdim=True)
    gram = (u @ u.T).square().mean().item()
    assert res.alpha2_squared == pytest.approx(gram, rel=1e-5)
    assert res.alpha12_squared == pytest.approx(gram, rel=1e-5)  # α1(x) = 1 everywhere
    assert res.alpha2_squared <= 1 + 1e-12


def test_output_sizes_differ_and_only_correct(pair):
    g, f, x = pair
    with torch.no_grad():
        pred = g(x).argmax(1)
    y = pred.clone()
    y[::3] = (pred[::3] + 1) % 10  # a third of the samples misclassified
    res = alpha(g, f, x, y, attack=AttackSpec("pgd", {"steps": 2}))
    assert res.n_used == len(x) - len(x[::3]) == int(res.used.sum())
    assert torch.equal(res.used, pred == y)
    assert res.per_sample_alpha1.shape == (res.n_used,)
    assert np.isfinite([res.alpha1, res.alpha2, res.alpha12]).all()
    every = alpha(g, f, x, y, attack=AttackSpec("pgd", {"steps": 2}), only_correct=False)
    assert every.n_used == len(x)
    # attacks do not depend on the selection: the used samples keep their values
    assert torch.allclose(every.per_sample_alpha1[res.used], res.per_sample_alpha1)


def test_both_ways_equals_two_single_calls(pair):
    a, b, x = pair
    with torch.no_grad():
        y_a = a(x).argmax(1)
    y_a[:5] = (y_a[:5] + 1) % 10
    ab, ba = alpha_both_ways(a, b, x, y_a, None, attack=AttackSpec("pgd", {"steps": 2}),
                             squared=False)
    single_ab = alpha(a, b, x, y_a, attack=AttackSpec("pgd", {"steps": 2}), squared=False)
    single_ba = alpha(b, a, x, attack=AttackSpec("pgd", {"steps": 2}), squared=False)
    for both, single in ((ab, single_ab), (ba, single_ba)):
        assert both.scalars() == single.scalars()
        assert torch.equal(both.per_sample_alpha1, single.per_sample_alpha1)
    assert ab.n_used == len(x) - 5 and ba.n_used == len(x)


def test_alpha_to_many_equals_single_calls(pair):
    a, b, x = pair
    with torch.no_grad():
        y = a(x).argmax(1)
    y[:4] = (y[:4] + 1) % 10
    c = tiny_cnn(3, seed=2)  # another output size
    many = alpha_to_many(a, {"b": b, "c": c}, x, y, attack=AttackSpec("pgd", {"steps": 2}))
    assert list(many) == ["b", "c"]
    for name, model in (("b", b), ("c", c)):
        single = alpha(a, model, x, y, attack=AttackSpec("pgd", {"steps": 2}))
        assert many[name].scalars() == pytest.approx(single.scalars(), rel=1e-6)
        assert many[name].n_used == len(x) - 4
    with pytest.raises(ValueError, match="to_models"):
        alpha_to_many(a, {}, x)


def test_alpha_draws_per_batch_as_alpha_to_many_does(pair):
    """A seeded random start draws from (seed, batch) in both, whatever the batch size."""
    a, b, x = pair
    options = {"steps": 2, "random_start": True, "seed": 0}
    for batch_size in (4, len(x)):
        single = alpha(a, b, x, attack=AttackSpec("pgd", options), batch_size=batch_size)
        many = alpha_to_many(a, {"b": b}, x, attack=AttackSpec("pgd", options),
                             batch_size=batch_size)
        assert many["b"].scalars() == pytest.approx(single.scalars(), rel=1e-6)


def test_batch_size_does_not_change_a_deterministic_attack(pair):
    g, f, x = pair
    factory = alpha_attack(AttackSpec("pgd", {"eps": 0.1, "steps": 2, "random_start": False}))
    whole = alpha(g, f, x, attack=factory)
    split = alpha(g, f, x, attack=factory, batch_size=5)
    assert split.alpha1 == pytest.approx(whole.alpha1, rel=1e-6)
    assert split.alpha2 == pytest.approx(whole.alpha2, rel=1e-6)


def test_registered_model_estimators(pair):
    ref, src, x = pair
    names = list_estimators("models")
    for name in ("alpha1", "alpha2", "alpha12", "gradient_alignment", "attribution_affinity"):
        assert name in names
    with torch.no_grad():
        y = ref(x).argmax(1)
    res = alpha(ref, src, x, y, attack=AttackSpec("pgd", {"steps": 2}))  # crafted on the reference
    scores = model_scores(ref, src, x, y, attack=AttackSpec("pgd", {"steps": 2}))
    by_name = get_estimator("alpha2")(ref, src, x, y, attack=AttackSpec("pgd", {"steps": 2}))
    assert by_name == res.alpha2 == scores["alpha2"]
    assert scores["alpha1"] == res.alpha1 and scores["alpha12"] == res.alpha12
    assert scores["alpha1_alpha2"] == pytest.approx(res.alpha1 * res.alpha2)
    assert scores["gradient_alignment"] == gradient_alignment(ref, src, x).mean
    assert scores["attribution_affinity"] == attribution_affinity(ref, src, x).mean


# --- modes, flags and bad input --------------------------------------------------------------


class Mixed(nn.Module):
    """Dropout and BatchNorm in train mode, one parameter frozen by the user."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(256, 16), nn.BatchNorm1d(16),
                                 nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4))
        self.net[1].bias.requires_grad_(False)

    def forward(self, x):
        return self.net(x)


def test_modes_and_requires_grad_restored():
    torch.manual_seed(0)
    a, b = Mixed().train(), Mixed().train()
    b.net[4].eval()
    x = torch.rand(8, 1, 16, 16)
    before = {m: ([s.training for s in m.modules()], [p.requires_grad for p in m.parameters()])
              for m in (a, b)}
    alpha(a, b, x, attack=AttackSpec("pgd", {"steps": 1}))
    alpha_both_ways(a, b, x, attack=AttackSpec("pgd", {"steps": 1}))
    gradient_alignment(a, b, x)
    attribution_affinity(a, b, x, "grad_input")
    for m in (a, b):
        assert ([s.training for s in m.modules()],
                [p.requires_grad for p in m.parameters()]) == before[m]
        assert all(p.grad is None for p in m.parameters())


@pytest.mark.parametrize("eps", [0, -0.1])
def test_eps_must_be_positive(pair, eps):
    g, f, x = pair
    with pytest.raises(ValueError, match="eps"):
        alpha(g, f, x, attack=AttackSpec("pgd", {"eps": eps}))
    with pytest.raises(ValueError, match="eps"):
        alpha_attack({"name": "pgd", "options": {"eps": eps}})


def test_no_correct_samples_is_a_clear_error(pair):
    g, f, x = pair
    with torch.no_grad():
        wrong = (g(x).argmax(1) + 1) % 10
    with pytest.raises(ValueError, match="only_correct: from_model classifies none"):
        alpha(g, f, x, wrong, attack=AttackSpec("pgd", {"steps": 1}))
    with pytest.raises(ValueError, match="y_b"):
        alpha_both_ways(g, f, x, None, (f(x).argmax(1) + 1) % 5,
                        attack=AttackSpec("pgd", {"steps": 1}))


def test_models_on_different_devices(pair):
    g, _, x = pair
    on_meta = tiny_cnn(10).to("meta")
    with pytest.raises(ValueError, match=r"from_model is on cpu.*to_model is on meta"):
        alpha(g, on_meta, x)
    with pytest.raises(ValueError, match=r"model_a is on cpu.*model_b is on meta"):
        gradient_alignment(g, on_meta, x)
    with pytest.raises(ValueError, match=r"model_b is on meta"):
        attribution_affinity(g, on_meta, x)


def test_other_bad_inputs(pair):
    g, f, x = pair
    with pytest.raises(ValueError, match="attack"):
        alpha(g, f, x, attack=PGD(g, 0.1))  # bound to one model: needs a factory
    with pytest.raises(ValueError, match="y: labels must be 0..9"):
        alpha(g, f, x, torch.full((len(x),), 12))
    with pytest.raises(ValueError, match="y: expected 24 labels"):
        alpha(g, f, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="x"):
        alpha(g, f, x * 2)
    with pytest.raises(ValueError, match="from_model"):
        alpha("not a model", f, x)
    # a custom factory is used as given, e.g. a partial of any registered attack class
    res = alpha(g, f, x, attack=functools.partial(PGD, eps=0.05, steps=1, random_start=False))
    assert res.n_used == len(x)
