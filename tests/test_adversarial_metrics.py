"""Gradient alignment, attribution affinity, the affine-fit metric and the synthetic theory
check: hand-worked linear cases, independent references (scikit-learn), invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from torch import nn

from transferability.adversarial import (
    affine_fit_loss,
    attribution_affinity,
    attribution_maps,
    fit_affine,
    gradient_alignment,
    perturb_weights,
    synthetic_target,
    theory_check,
)
from transferability.models import create_model


def linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Sequential:
    """f(x) = W·vec(x) + b on images, float64."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                      dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return nn.Sequential(nn.Flatten(), layer)


def images(n: int, c: int = 1, h: int = 3, w: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)


@pytest.fixture(scope="module")
def cnns():
    torch.manual_seed(0)
    a = create_model("cnn", num_classes=10, width=4).eval()
    b = create_model("cnn", num_classes=3, width=4).eval()
    return a, b, torch.rand(10, 1, 16, 16, generator=torch.Generator().manual_seed(1))


# --- gradient alignment ----------------------------------------------------------------------


def test_alignment_with_itself_is_one(cnns):
    a, _, x = cnns
    y = torch.arange(len(x)) % 10
    res = gradient_alignment(a, a, x, y)
    assert torch.allclose(res.per_sample, torch.ones(len(x), dtype=torch.float64))
    assert res.mean == pytest.approx(1.0) and res.mean_norm_ratio == pytest.approx(1.0)


def test_alignment_with_negated_two_class_linear_model_by_hand():
    # For two classes the CE gradient is Wᵀ(p − e_y) = s·Wᵀ(1, −1). Negating W swaps p,
    # which flips the sign of the gradient for every label: cosine −1. Its norm changes by
    # |s_a|/|s_b| = exp(−margin_a), margin_a = z_y − z_other of model a.
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 12, generator=g, dtype=torch.float64)
    a, b = linear(weight), linear(-weight)
    x, y = images(7), torch.tensor([0, 1, 1, 0, 1, 0, 0])
    res = gradient_alignment(a, b, x, y)
    assert torch.allclose(res.per_sample, torch.full((7,), -1.0, dtype=torch.float64))
    z = x.flatten(1) @ weight.T
    margin = z.gather(1, y[:, None]).squeeze(1) - z.gather(1, 1 - y[:, None]).squeeze(1)
    assert torch.allclose(res.norm_ratio, torch.exp(-margin))
    assert res.mean_norm_ratio == pytest.approx(float(torch.exp(-margin).mean()))


def test_alignment_of_linear_models_matches_closed_form():
    g = torch.Generator().manual_seed(1)
    wa, wb = (torch.randn(3, 12, generator=g, dtype=torch.float64) for _ in range(2))
    x, y = images(6, seed=2), torch.tensor([0, 1, 2, 2, 1, 0])
    res = gradient_alignment(linear(wa), linear(wb), x, y)
    xs, onehot = x.flatten(1).numpy(), np.eye(3)[y.numpy()]

    def grad(w):
        z = xs @ w.numpy().T
        p = np.exp(z - z.max(1, keepdims=True))
        return (p / p.sum(1, keepdims=True) - onehot) @ w.numpy()

    ga, gb = grad(wa), grad(wb)
    cos = (ga * gb).sum(1) / np.linalg.norm(ga, axis=1) / np.linalg.norm(gb, axis=1)
    np.testing.assert_allclose(res.per_sample.numpy(), cos, rtol=1e-10)
    ratio = np.linalg.norm(ga, axis=1) / np.linalg.norm(gb, axis=1)
    np.testing.assert_allclose(res.norm_ratio.numpy(), ratio, rtol=1e-10)


def test_alignment_without_labels_uses_each_models_prediction(cnns):
    a, b, x = cnns  # 10 vs 3 classes: no common labels
    res = gradient_alignment(a, b, x)

    def own_prediction_gradient(model):  # independent: plain autograd, one model at a time
        xg = x.clone().requires_grad_(True)
        out = model(xg)
        torch.nn.functional.cross_entropy(out, out.argmax(1), reduction="sum").backward()
        return xg.grad.flatten(1)

    a.eval(), b.eval()
    ga, gb = own_prediction_gradient(a), own_prediction_gradient(b)
    expected = torch.nn.functional.cosine_similarity(ga, gb, dim=1)
    assert torch.allclose(res.per_sample.to(expected.dtype), expected, atol=1e-5)
    with pytest.raises(ValueError, match="y: labels must be 0..2"):
        gradient_alignment(a, b, x, torch.full((len(x),), 7))


# --- attribution affinity --------------------------------------------------------------------


def test_saliency_and_grad_input_of_a_linear_model_by_hand():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(1, 2 * 3 * 4, generator=g, dtype=torch.float64)  # f(x) = w·x, 2 channels
    x = images(5, c=2)
    maps = attribution_maps(linear(w), x, "saliency")
    expected = w.view(2, 3, 4).abs().mean(dim=0)  # |∇ₓ w·x| = |w|, mean over channels
    assert maps.shape == (5, 3, 4)
    assert torch.allclose(maps, expected.expand(5, 3, 4))
    grad_input = attribution_maps(linear(w), x, "grad_input")
    assert torch.allclose(grad_input, (x * w.view(1, 2, 3, 4)).mean(dim=1))


def test_affinity_of_linear_models_by_hand_and_output_sizes_may_differ():
    g = torch.Generator().manual_seed(4)
    wa = torch.randn(3, 12, generator=g, dtype=torch.float64)  # 3 outputs: ∇ Σ out = Σ_k w_k
    wb = torch.randn(1, 12, generator=g, dtype=torch.float64)
    x = images(4)
    res = attribution_affinity(linear(wa), linear(wb), x)
    sa, sb = wa.sum(0).abs(), wb[0].abs()
    expected = float(sa @ sb / (sa.norm() * sb.norm()))
    assert torch.allclose(res.per_sample, torch.full((4,), expected, dtype=torch.float64))
    assert float(res) == pytest.approx(expected)


def test_affinity_self_is_one_and_symmetric(cnns):
    a, b, x = cnns
    for attribution in ("saliency", "grad_input"):
        assert attribution_affinity(a, a, x, attribution).mean == pytest.approx(1.0)
        ab, ba = (attribution_affinity(a, b, x, attribution),
                  attribution_affinity(b, a, x, attribution))
        assert ab.attribution == attribution
        assert torch.allclose(ab.per_sample, ba.per_sample)
        assert ab.mean < 0.999  # different models: not the self-affinity of 1
        maps_a, maps_b = attribution_maps(a, x, attribution), attribution_maps(b, x, attribution)
        expected = torch.nn.functional.cosine_similarity(maps_a.flatten(1), maps_b.flatten(1))
        assert torch.allclose(ab.per_sample.to(expected.dtype), expected, atol=1e-6)
    with pytest.raises(ValueError, match="attribution"):
        attribution_affinity(a, b, x, "lrp")
    old = {**ab.to_dict(), "schema": 1, "method": attribution}  # before the rename
    del old["attribution"]
    assert type(ab).from_dict(old).attribution == attribution


# --- affine fit ------------------------------------------------------------------------------


def test_affine_fit_exact_affine_target_is_zero():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 6))
    t = s @ rng.normal(size=(6, 3)) + rng.normal(size=3)
    assert affine_fit_loss(s, t) < 1e-20
    assert affine_fit_loss(torch.as_tensor(s), torch.as_tensor(t), normalize=False) < 1e-20
    fitted = fit_affine(s, t)
    np.testing.assert_allclose(fitted(s), t, atol=1e-10)


def test_affine_fit_one_dimensional_by_hand():
    # slope 4.5/5 = 0.9, intercept 1.25 − 0.9·1.5 = −0.1; residuals 0.1, 0.2, −0.7, 0.4;
    # Σ r² = 0.7, mean 0.175; Σ (t − t̄)² = 4.75.
    s, t = np.array([[0.0], [1], [2], [3]]), np.array([[0.0], [1], [1], [3]])
    assert affine_fit_loss(s, t) == pytest.approx(0.7 / 4.75, abs=1e-14)
    assert affine_fit_loss(s, t, normalize=False) == pytest.approx(0.175, abs=1e-14)
    fitted = fit_affine(s, t)
    assert fitted.weight[0, 0] == pytest.approx(0.9) and fitted.bias[0] == pytest.approx(-0.1)


def test_affine_fit_labels_ridge_and_held_out_against_sklearn():
    rng = np.random.default_rng(1)
    y = np.arange(80) % 4
    s = rng.normal(size=(80, 5)) + rng.normal(size=(4, 5))[y]
    onehot = np.eye(4)[y]
    # class labels are one-hot targets
    assert affine_fit_loss(s, y) == pytest.approx(affine_fit_loss(s, onehot), rel=1e-12)
    assert affine_fit_loss(onehot, y) < 1e-20  # its own one-hot fits exactly
    ridge = Ridge(alpha=3.0).fit(s, onehot)
    fitted = fit_affine(s, torch.as_tensor(y), ridge=3.0)
    np.testing.assert_allclose(fitted.weight, ridge.coef_.T, rtol=1e-8)
    np.testing.assert_allclose(fitted.bias, ridge.intercept_, rtol=1e-8)
    assert affine_fit_loss(s, y, ridge=3.0) > affine_fit_loss(s, y)
    # held-out loss is 1 − R² (variance-weighted over outputs) of the training fit
    loss = affine_fit_loss(s[:60], y[:60], held_out=(s[60:], y[60:]), ridge=3.0)
    r2 = r2_score(onehot[60:], Ridge(alpha=3.0).fit(s[:60], onehot[:60]).predict(s[60:]),
                  multioutput="variance_weighted")
    assert loss == pytest.approx(1 - r2, rel=1e-8)


def test_affine_fit_bad_input():
    s = np.ones((5, 2))
    with pytest.raises(ValueError, match="length mismatch"):
        affine_fit_loss(s, np.zeros((4, 1)))
    with pytest.raises(ValueError, match="target: is constant"):
        affine_fit_loss(np.random.default_rng(0).normal(size=(5, 2)), np.ones((5, 1)))
    with pytest.raises(ValueError, match="source_outputs"):
        affine_fit_loss(np.full((5, 2), np.nan), np.arange(5))
    with pytest.raises(ValueError, match="ridge"):
        affine_fit_loss(s, np.arange(5) % 2, ridge=-1)


# --- the synthetic theory check --------------------------------------------------------------


def test_theory_check_trend_is_monotone():
    rows = theory_check(scales=(0.0, 0.2, 0.8, 1.6), n=300)
    assert rows[0].alpha1 == pytest.approx(1.0) and rows[0].fit_loss < 1e-20
    for field in ("alpha1", "alpha2", "alpha12"):
        values = [getattr(r, field) for r in rows]
        assert np.all(np.diff(values) < 0), (field, values)
    losses = [r.fit_loss for r in rows]
    assert np.all(np.diff(losses) > 0), losses


def test_perturb_weights_copies_and_scales():
    target = synthetic_target(seed=0)
    same = perturb_weights(target, 0.0)
    far = perturb_weights(target, 0.5, seed=1)
    for p, q, r in zip(target.parameters(), same.parameters(), far.parameters(), strict=True):
        assert torch.equal(p, q) and not torch.equal(p, r)
        rel = ((r - p).pow(2).mean().sqrt() / p.pow(2).mean().sqrt()).item()
        assert 0.2 < rel < 1.0  # ≈ 0.5 of each tensor's rms
