"""Knowledge-transferability estimators: hand-worked values, invariants, the LogME fast path
against dense linear algebra, streaming against one-shot, extreme magnitudes and bad input.
(Agreement with plain reference implementations is in test_estimator_oracles.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.covariance import ledoit_wolf

from transferability._registry import Registry
from transferability.estimators import (
    LEEP,
    NCE,
    HScore,
    LogME,
    get_estimator,
    h_score,
    leep,
    list_estimators,
    logme,
    nce,
    register_estimator,
    score,
    task_hardness,
    transrate,
)
from transferability.estimators import registry as registry_module
from transferability.features import Outputs

LOG_2PI = np.log(2 * np.pi)


def make_task(n=120, d=6, classes=3, sources=5, seed=0):
    """Features with class structure, a source softmax over ``sources`` classes, labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    f = rng.normal(size=(n, d)) + rng.normal(size=(classes, d))[y]
    logits = f @ rng.normal(size=(d, sources))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return f, p / p.sum(axis=1, keepdims=True), y


def inputs_for(inputs, f, p):
    return {"features": f, "probs": p, "source_labels": p.argmax(axis=1)}[inputs]


def output_estimators() -> list[str]:
    """Registered estimators that score extracted outputs (inputs "models" need models)."""
    return [n for n in list_estimators() if get_estimator(n).inputs != "models"]


# --- values worked out by hand -------------------------------------------------------------


def test_leep_by_hand():
    p = np.array([[0.8, 0.2], [0.6, 0.4], [0.2, 0.8], [0.4, 0.6]])
    y = np.array([0, 0, 1, 1])
    # n·P(y, z): y=0 -> [0.8+0.6, 0.2+0.4] = [1.4, 0.6]; y=1 -> [0.6, 1.4]; columns sum to 2,
    # so P(y|z=0) = [0.7, 0.3], P(y|z=1) = [0.3, 0.7].
    # EEP: 0.8·0.7 + 0.2·0.3 = 0.62, 0.6·0.7 + 0.4·0.3 = 0.54, then 0.62 and 0.54 again.
    expected = (2 * np.log(0.62) + 2 * np.log(0.54)) / 4
    assert leep(p, y) == pytest.approx(expected, abs=1e-14)


def test_nce_and_task_hardness_by_hand():
    z = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1])
    # counts: (y0, z0) = 2, (y1, z0) = 1, (y1, z1) = 3 out of 6;
    # P(y|z0) = 2/3, 1/3 and P(y1|z1) = 1.
    expected = 2 / 6 * np.log(2 / 3) + 1 / 6 * np.log(1 / 3) + 3 / 6 * np.log(1.0)
    assert nce(z, y) == pytest.approx(expected, abs=1e-14)
    # H(Y) with P(y) = (1/3, 2/3); H(Y|Z) = -NCE.
    h_y = -(1 / 3 * np.log(1 / 3) + 2 / 3 * np.log(2 / 3))
    assert task_hardness(y) == pytest.approx(h_y, abs=1e-14)
    assert task_hardness(y, source_labels=z) == pytest.approx(-expected, abs=1e-14)


def test_h_score_by_hand():
    y = np.array([0, 0, 1, 1])
    # 1-D: f = 0, 2, 4, 6; var f = (9+1+1+9)/4 = 5; class means 1, 5 -> var E[f|y] = 4.
    assert h_score(np.array([[0.0], [2.0], [4.0], [6.0]]), y) == pytest.approx(4 / 5)
    # 2-D: second column ±1; cov f = [[5, -1], [-1, 1]] (det 4, inverse[0, 0] = 1/4);
    # class means (1, 0), (5, 0) -> cov E[f|y] = [[4, 0], [0, 0]]; H = 4 · 1/4 = 1.
    f = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 1.0], [6.0, -1.0]])
    assert h_score(f, y) == pytest.approx(1.0, abs=1e-12)


def test_logme_by_hand():
    # F = 1 (n=4, D=1), class 0 has y = (1, 1, 0, 0). Evidence = log N(y; 0, 11ᵀ/α + I/β):
    # along u = 1/2, u·y = 1 carries variance 4/α + 1/β, the 3 orthogonal directions
    # carry 1/β and hold ‖y‖² - 1 = 1. Maximum: 1/β = 1/3, 4/α + 1/β = 1 -> α = 6, β = 3;
    # L = -(1/2)(log 1 + 1) - (3/2)(log(1/3) + 1) - 2 log 2π. Class 1 is the mirror image.
    # (Check with the fixed point: m = β·2/(α + 4β) = 1/3, γ = 12/18, α = γ/m² = 6,
    # ‖Fm - y‖² = 10/9, β = (4 - γ)/(10/9) = 3.)
    expected = (-0.5 - 1.5 * (np.log(1 / 3) + 1) - 2 * LOG_2PI) / 4
    y = np.array([0, 0, 1, 1])
    assert logme(np.ones((4, 1)), y) == pytest.approx(expected, abs=1e-10)
    # Regression target equal to the class-0 column: same evidence.
    assert logme(np.ones((4, 1)), target_values=np.array([[1.0], [1.0], [0.0], [0.0]])) == \
        pytest.approx(expected, abs=1e-10)
    # D = 5 copies of 1/√5 (n < D, the Gram path): Fw = 1·(Σw/√5) with Σw/√5 ~ N(0, 1/α),
    # the same model, the same evidence.
    assert logme(np.ones((4, 5)) / np.sqrt(5), y) == pytest.approx(expected, abs=1e-10)
    _, alpha, beta = LogME().update(np.ones((4, 1)), y).per_target()
    np.testing.assert_allclose(alpha, [6, 6], rtol=1e-8)
    np.testing.assert_allclose(beta, [3, 3], rtol=1e-8)


def test_all_zero_features_give_finite_scores():
    # F = 0: LogME is the evidence of y ~ N(0, I/β) alone, at β = n/‖y‖² = 4/2:
    # L/n = ½ log 2 − ½ − ½ log 2π. H-score and TransRate see no signal: 0.
    y = np.array([0, 0, 1, 1])
    assert logme(np.zeros((4, 3)), y) == pytest.approx(0.5 * (np.log(2) - 1 - LOG_2PI))
    assert logme(np.zeros((4, 6)), y) == pytest.approx(0.5 * (np.log(2) - 1 - LOG_2PI))
    assert h_score(np.zeros((4, 3)), y) == 0.0
    assert transrate(np.zeros((4, 3)), y) == 0.0


def test_transrate_by_hand():
    y = np.array([0, 1, 1, 0])
    # column 0 = 0, 2, 4, 6 -> centred -3, -1, 1, 3; other columns 0. With ε² = 1, d = 2:
    # R(Z) = ½ log(1 + 2/4 · 20) = ½ log 11; class 0 = {-3, 3}: ½ log(1 + 2/2 · 18) = ½ log 19;
    # class 1 = {-1, 1}: ½ log(1 + 2/2 · 2) = ½ log 3; weights ½ each.
    f = np.zeros((4, 2))
    f[:, 0] = [0, 2, 4, 6]
    assert transrate(f, y, distortion=1.0) == pytest.approx(0.25 * np.log(121 / 57), abs=1e-12)
    # d = 3 (classes have n_c = 2 < d: the Gram side): R(Z) = ½ log(1 + 3/4 · 20) = ½ log 16;
    # class 0 Gram [[9, -9], [-9, 9]] has eigenvalue 18: ½ log(1 + 3/2 · 18) = ½ log 28;
    # class 1: eigenvalue 2, ½ log(1 + 3/2 · 2) = ½ log 4.
    f = np.zeros((4, 3))
    f[:, 0] = [0, 2, 4, 6]
    assert transrate(f, y, distortion=1.0) == pytest.approx(0.25 * np.log(16 / 7), abs=1e-12)


# --- references and invariants -------------------------------------------------------------


@pytest.mark.parametrize("n", [40, 300])  # N < D and N > D relative to the 60 columns below
def test_h_score_shrinkage_matches_sklearn_ledoit_wolf(n):
    rng = np.random.default_rng(1)
    y = np.arange(n) % 4
    f = rng.normal(size=(n, 60)) * rng.uniform(0.5, 3, size=60) + 5 + y[:, None]
    cov, delta = ledoit_wolf(f)
    means = np.stack([f[y == c].mean(axis=0) for c in range(4)]) - f.mean(axis=0)
    covg = (means.T * np.bincount(y) / n) @ means
    expected = np.trace(np.linalg.pinv(cov) @ ((1 - delta) * covg))
    assert h_score(f, y, shrinkage=True) == pytest.approx(expected, rel=1e-9)


def test_leep_and_nce_are_at_most_zero():
    for seed in range(5):
        _, p, y = make_task(seed=seed)
        assert leep(p, y) <= 0
        assert nce(p.argmax(axis=1), y) <= 0
    # a source whose predictions determine the target exactly reaches NCE = 0
    y = np.array([0, 0, 1, 1, 2, 2])
    assert nce(np.array([3, 3, 0, 0, 1, 1]), y) == 0.0


def test_renaming_target_labels_leaves_every_score_unchanged():
    f, p, y = make_task()
    renamed = np.array([2, 0, 1])[y]
    for name in output_estimators():
        est = get_estimator(name)
        x = inputs_for(est.inputs, f, p)
        assert est(x, renamed) == pytest.approx(est(x, y), rel=1e-10, abs=1e-12), name


def test_duplicating_every_sample_leaves_leep_and_nce_unchanged():
    _, p, y = make_task()
    z = p.argmax(axis=1)
    assert leep(np.vstack([p, p]), np.concatenate([y, y])) == pytest.approx(leep(p, y),
                                                                           abs=1e-14)
    assert nce(np.concatenate([z, z]), np.concatenate([y, y])) == pytest.approx(nce(z, y),
                                                                               abs=1e-14)


def dense_evidence(f, y, alpha, beta):
    """L(α, β) by dense linear algebra on the D × D matrix A = αI + βFᵀF."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    return (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * LOG_2PI
            - beta / 2 * np.sum((f @ m - y) ** 2) - alpha / 2 * m @ m
            - 0.5 * np.linalg.slogdet(a)[1])


def marginal_log_likelihood(f, y, alpha, beta):
    """The evidence as a Gaussian marginal: y ~ N(0, FFᵀ/α + I/β)."""
    cov = f @ f.T / alpha + np.eye(len(f)) / beta
    return multivariate_normal(np.zeros(len(f)), cov).logpdf(y)


@pytest.mark.parametrize("n,d", [(60, 5), (30, 10)])
def test_logme_fast_path_equals_dense_evidence_at_its_maximum(n, d):
    rng = np.random.default_rng(2)
    y = np.arange(n) % 3
    f = rng.normal(size=(n, d)) + rng.normal(size=(3, d))[y]
    per_class, alphas, betas = LogME().update(f, y).per_target()
    for c in range(3):
        yc = (y == c).astype(float)
        value = dense_evidence(f, yc, alphas[c], betas[c])
        assert per_class[c] == pytest.approx(value / n, abs=1e-10)
        assert value == pytest.approx(marginal_log_likelihood(f, yc, alphas[c], betas[c]))
        # (α, β) is a maximum: no nearby point in log-space does better
        for da, db in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3), (1e-3, 1e-3)]:
            assert dense_evidence(f, yc, alphas[c] * np.exp(da), betas[c] * np.exp(db)) < value
    assert logme(f, y) == pytest.approx(per_class.mean(), abs=1e-9)


def test_logme_with_fewer_samples_than_dimensions_reaches_the_supremum():
    # n < D: F can fit y exactly, and for some classes the evidence is largest as β → ∞,
    # where it tends to max_α log N(y; 0, FFᵀ/α), reached at α = n / yᵀ(FFᵀ)⁻¹y.
    rng = np.random.default_rng(2)
    n, d = 8, 12
    y = np.arange(n) % 3
    f = rng.normal(size=(n, d)) + rng.normal(size=(3, d))[y]
    per_class, alphas, betas = LogME().update(f, y).per_target()
    kernel = f @ f.T
    at_infinity = []
    for c in range(3):
        yc = (y == c).astype(float)
        value = marginal_log_likelihood(f, yc, alphas[c], betas[c])
        assert per_class[c] == pytest.approx(value / n, abs=1e-9)
        a_star = n / (yc @ np.linalg.solve(kernel, yc))
        limit = multivariate_normal(np.zeros(n), kernel / a_star).logpdf(yc)
        assert value >= limit - 1e-9
        at_infinity.append(value == pytest.approx(limit, abs=1e-9))
        for da, db in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)]:
            near = marginal_log_likelihood(f, yc, alphas[c] * np.exp(da), betas[c] * np.exp(db))
            assert near <= value + 1e-9
    assert any(at_infinity) and not all(at_infinity)  # both kinds of maximum occur here
    assert logme(f, y) == pytest.approx(per_class.mean(), abs=1e-9)  # the Gram path agrees


# --- streaming equals one-shot ---------------------------------------------------------------


def batches(*arrays, sizes=(7, 30, 50)):
    """Uneven batches; the data is sorted by label so early batches miss classes."""
    cuts = np.cumsum(sizes)
    return list(zip(*(np.split(a, cuts) for a in arrays), strict=True))


def sorted_task(**kwargs):
    f, p, y = make_task(**kwargs)
    order = np.argsort(y, kind="stable")
    return f[order], p[order], y[order]


def test_streaming_equals_one_shot():
    f, p, y = sorted_task()
    z = p.argmax(axis=1)
    est = LEEP()
    for pb, yb in batches(p, y):
        est.update(pb, yb)
    assert est.compute(batches(p, y)[::-1]) == pytest.approx(leep(p, y), abs=1e-12)
    est = NCE()
    for zb, yb in batches(z, y):
        est.update(zb, yb)
    assert est.compute() == pytest.approx(nce(z, y), abs=1e-14)
    for shrinkage in (False, True):
        est = HScore(shrinkage)
        for fb, yb in batches(f, y):
            est.update(fb, yb)
        assert est.compute() == pytest.approx(h_score(f, y, shrinkage), rel=1e-10)
    est = LogME()
    for fb, yb in batches(f, y):
        est.update(fb, yb)
    assert est.compute() == pytest.approx(logme(f, y), abs=1e-9)
    targets = f[:, :2] * 0.5 + 1
    est = LogME()
    for fb, tb in batches(f, targets):
        est.update(fb, target_values=tb)
    assert est.compute() == pytest.approx(logme(f, target_values=targets), abs=1e-9)


def test_streaming_logme_with_fewer_samples_than_dimensions():
    f, _, y = sorted_task(n=12, d=20)
    est = LogME()
    for fb, yb in batches(f, y, sizes=(5,)):
        est.update(fb, yb)
    assert est.compute() == pytest.approx(logme(f, y), abs=1e-7)


def test_leep_second_pass_must_see_the_same_data():
    _, p, y = make_task()
    est = LEEP().update(p, y)
    with pytest.raises(ValueError, match="batches: differ"):
        est.compute([(p[:-1], y[:-1])])


# --- registry and torch inputs -------------------------------------------------------------


def test_registry_scores_any_estimator_from_outputs():
    f, p, y = make_task()
    outputs = Outputs(torch.tensor(f, dtype=torch.float32),
                      torch.tensor(np.log(p), dtype=torch.float32), torch.tensor(y))
    assert set(list_estimators()) >= {"leep", "nce", "h_score", "h_score_shrinkage", "logme",
                                      "transrate"}
    assert list_estimators("probs") == ["leep"]
    for name in output_estimators():
        inputs = get_estimator(name).inputs
        direct = get_estimator(name)(inputs_for(inputs, f, p), y)
        assert score(name, outputs, torch.tensor(y)) == pytest.approx(direct, rel=1e-4), name
    with pytest.raises(ValueError, match="name: unknown value 'nope'.*leep"):
        get_estimator("nope")


def test_registry_keeps_room_for_model_based_scores(monkeypatch):
    fresh = Registry("estimator")
    fresh._items = dict(registry_module._ESTIMATORS._items)
    monkeypatch.setattr(registry_module, "_ESTIMATORS", fresh)

    @register_estimator("toy_alpha", inputs="models")
    def toy_alpha(source_model, reference_model, x):
        return 0.5

    assert "toy_alpha" in list_estimators("models")
    assert get_estimator("toy_alpha")(None, None, None) == 0.5
    with pytest.raises(ValueError, match="name: estimator 'toy_alpha' needs models"):
        score("toy_alpha", None, [0, 1])
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("leep", inputs="probs")(lambda p, y: 0.0)
    with pytest.raises(ValueError, match="inputs: unknown value"):
        register_estimator("x", inputs="pixels")
    with pytest.raises(TypeError, match="kind"):  # the old spelling is gone
        register_estimator("x", kind="features")


def test_torch_inputs_give_the_same_floats():
    f, p, y = make_task()
    ft, pt, yt = torch.tensor(f), torch.tensor(p), torch.tensor(y)
    assert leep(pt, yt) == leep(p, y)
    assert logme(ft, yt) == logme(f, y)
    assert transrate(ft, yt) == transrate(f, y)
    assert isinstance(h_score(ft, yt), float)


# --- extreme magnitudes ------------------------------------------------------------------------

SCALES = [1e-300, 1e-160, 2.0**-40, 3.0, 1e160, 1e300]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("n,d", [(120, 6), (10, 20)])  # the FᵀF and the Gram path of LogME
def test_logme_and_h_score_ignore_a_global_feature_scale(scale, n, d):
    # L(α, β) is unchanged by F → cF with α → c²α; H-score is a ratio of covariances
    f, _, y = make_task(n=n, d=d)
    assert logme(f * scale, y) == pytest.approx(logme(f, y), rel=1e-9)
    assert h_score(f * scale, y) == pytest.approx(h_score(f, y), rel=1e-9)
    assert h_score(f * scale, y, shrinkage=True) == pytest.approx(h_score(f, y, shrinkage=True),
                                                                  rel=1e-9)
    # a regression target y → ty shifts L/n by −log t
    t = f[:, :2] * 0.5 + 1
    assert logme(f * scale, target_values=t * scale) == pytest.approx(
        logme(f, target_values=t) - np.log(scale), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("scale", SCALES)
def test_streaming_estimators_ignore_a_global_feature_scale(scale):
    f, _, y = sorted_task()
    for est, one_shot in [(LogME(), logme(f, y)), (HScore(), h_score(f, y)),
                          (HScore(True), h_score(f, y, True))]:
        for fb, yb in batches(f * scale, y):
            est.update(fb, yb)
        assert est.compute() == pytest.approx(one_shot, rel=1e-9)


@pytest.mark.parametrize("first", [1e-200, 1e200])
def test_streaming_rescales_its_sums_when_a_batch_is_far_larger(first):
    # the first batch sets the scale; a batch 1e200 times larger must not overflow the sums
    f, _, y = sorted_task()
    f = f.copy()
    f[:7] *= first
    t = f[:, :2] * 0.5 + 1
    for shrinkage in (False, True):
        est = HScore(shrinkage)
        for fb, yb in batches(f, y):
            est.update(fb, yb)
        assert est.compute() == pytest.approx(h_score(f, y, shrinkage), rel=1e-10)
    est, reg = LogME(), LogME()
    for fb, yb, tb in batches(f, y, t):
        est.update(fb, yb)
        reg.update(fb, target_values=tb)
    assert est.compute() == pytest.approx(logme(f, y), rel=1e-9)
    assert reg.compute() == pytest.approx(logme(f, target_values=t), rel=1e-9)


def coding_rate_slogdet(z, distortion, d):
    """The coding rate as first written: slogdet of I + d/(n·ε²) ZᵀZ on the smaller side."""
    n = len(z)
    gram = z @ z.T if n < z.shape[1] else z.T @ z
    return 0.5 * np.linalg.slogdet(np.eye(len(gram)) + gram * (d / (n * distortion)))[1]


def transrate_slogdet(f, y, distortion=1e-4):
    z = f - f.mean(axis=0)
    n, d = z.shape
    return coding_rate_slogdet(z, distortion, d) - sum(
        np.mean(y == c) * coding_rate_slogdet(z[y == c], distortion, d) for c in np.unique(y))


@pytest.mark.parametrize("scale", [1e-3, 0.1, 1.0, 10.0, 1e3])
@pytest.mark.parametrize("distortion", [1e-4, 1.0])
def test_transrate_equals_the_slogdet_formula_at_ordinary_scales(scale, distortion):
    f, _, y = make_task(n=120, d=6)
    f = f * scale
    assert transrate(f, y, distortion) == pytest.approx(transrate_slogdet(f, y, distortion),
                                                        rel=1e-10)


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e160, 1e300])
def test_transrate_is_finite_at_extreme_scales(scale):
    f, _, y = make_task(n=120, d=6)
    assert np.isfinite(transrate(f * scale, y))
    # R depends on Z and ε only through ZᵀZ/ε², so scaling both leaves TransRate unchanged
    c = 1e150 if scale > 1 else 1e-150
    assert transrate(f * c, y, distortion=1e-4 * c**2) == pytest.approx(transrate(f, y),
                                                                       rel=1e-10)
    # as the scale grows, TransRate tends to a finite limit; as it shrinks, to 0
    if scale < 1:
        assert transrate(f * scale, y) == pytest.approx(0.0, abs=1e-200)


def test_logme_rejects_an_all_zero_regression_target():
    f, _, _ = make_task()
    t = np.c_[f[:, 0], np.zeros(len(f))]
    with pytest.raises(ValueError, match=r"target_values: column\(s\) \[1\] are all zero"):
        logme(f, target_values=t)
    with pytest.raises(ValueError, match=r"target_values: column\(s\) \[1\] are all zero"):
        LogME().update(f, target_values=t).compute()
    with pytest.raises(ValueError, match=r"target_values: column\(s\) \[0\] are all zero"):
        logme(np.zeros_like(f), target_values=t[:, 1:])


@pytest.mark.parametrize("call", [
    lambda f, y: h_score(f, y), lambda f, y: h_score(f, y, shrinkage=True),
    lambda f, y: logme(f, y), lambda f, y: logme(f[:5], y[:5] % 2),  # FᵀF and Gram paths
    lambda f, y: transrate(f, y), lambda f, y: HScore().update(f, y).compute(),
    lambda f, y: LogME().update(f, y).compute()])
def test_a_failed_eigendecomposition_is_a_value_error_naming_features(monkeypatch, call):
    def fail(*args, **kwargs):
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    monkeypatch.setattr(np.linalg, "eigh", fail)
    monkeypatch.setattr(np.linalg, "eigvalsh", fail)
    f, _, y = make_task(n=30)
    with pytest.raises(ValueError, match="features: the eigendecomposition failed .*did not "
                                         "converge") as info:
        call(f, y)
    assert not isinstance(info.value, np.linalg.LinAlgError)


# --- bad input -------------------------------------------------------------------------------

_F, _P, _Y = make_task(n=30)


def call(name, f=_F, p=_P, y=_Y):
    inputs = get_estimator(name).inputs
    return get_estimator(name)(inputs_for(inputs, f, p), y)


ALL = ["leep", "nce", "h_score", "h_score_shrinkage", "logme", "transrate"]
ARG = {"leep": "source_probs", "nce": "source_labels", "h_score": "features",
       "h_score_shrinkage": "features", "logme": "features", "transrate": "features"}


@pytest.mark.parametrize("name", ["leep", "h_score", "h_score_shrinkage", "logme", "transrate"])
def test_nan_or_inf_is_rejected(name):
    f, p = _F.copy(), _P.copy()
    f[3, 1], p[3, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match=rf"{ARG[name]}: contains 1 NaN or inf"):
        call(name, f=f, p=p)


@pytest.mark.parametrize("name", ALL)
def test_labels_with_a_missing_class_are_rejected(name):
    y = _Y.copy()
    y[y == 1] = 3  # classes 0, 2, 3
    with pytest.raises(ValueError, match=r"target_labels: .*missing class\(es\) 1 "):
        call(name, y=y)


@pytest.mark.parametrize("name", ALL)
def test_length_mismatch_is_rejected(name):
    with pytest.raises(ValueError, match=rf"length mismatch: {ARG[name]} has 30, "
                                         rf"target_labels has 29"):
        call(name, y=_Y[:29])


@pytest.mark.parametrize("name", ALL)
def test_a_single_class_is_rejected(name):
    with pytest.raises(ValueError, match=r"target_labels: needs at least 2 classes"):
        call(name, y=np.zeros(30, dtype=int))


@pytest.mark.parametrize("name", ALL)
def test_fewer_samples_than_classes_is_rejected(name):
    with pytest.raises(ValueError, match=r"target_labels: 3 samples for 3 classes"):
        call(name, f=_F[:3], p=_P[:3], y=np.array([0, 1, 2]))


def test_logits_instead_of_softmax_is_rejected():
    logits = np.log(_P) + 2.0  # rows sum to e² ≠ 1, values above 1
    with pytest.raises(ValueError, match="source_probs: .*softmax outputs, not logits"):
        leep(logits, _Y)
    with pytest.raises(ValueError, match="source_probs: rows must sum to 1.*softmax"):
        leep(_P * 0.5, _Y)
    with pytest.raises(ValueError, match="source_probs: rows must sum to 1"):
        LEEP().update(_P * 0.5, _Y)


def test_streaming_checks():
    with pytest.raises(ValueError, match="features: expected 6 columns"):
        LogME().update(_F, _Y).update(_F[:, :3], _Y)
    with pytest.raises(ValueError, match=r"target_labels: .*missing class\(es\) 1 "):
        NCE().update(_P.argmax(axis=1)[_Y < 2], 2 * _Y[_Y < 2]).compute()
    with pytest.raises(ValueError, match="features: no data"):
        HScore().compute()
    with pytest.raises(ValueError, match="target_labels, target_values: every batch must give "
                                         "the same kind"):
        LogME().update(_F, _Y).update(_F, target_values=_F[:, :2])
    with pytest.raises(ValueError, match="distortion: expected a finite number > 0"):
        transrate(_F, _Y, distortion=0)


# --- a table of bad inputs: every estimator raises a ValueError naming the argument ----------

_Z = _P.argmax(axis=1)

# name -> (call(input, target_labels), valid input, the input's argument name)
CALLS = {
    "leep": (leep, _P, "source_probs"),
    "nce": (nce, _Z, "source_labels"),
    "h_score": (h_score, _F, "features"),
    "h_score_shrinkage": (lambda f, y: h_score(f, y, shrinkage=True), _F, "features"),
    "logme": (logme, _F, "features"),
    "transrate": (transrate, _F, "features"),
    "task_hardness": (lambda z, y: task_hardness(y, source_labels=z), _Z, "source_labels"),
    "LEEP": (lambda p, y: LEEP().update(p, y).compute([(p, y)]), _P, "source_probs"),
    "NCE": (lambda z, y: NCE().update(z, y).compute(), _Z, "source_labels"),
    "HScore": (lambda f, y: HScore().update(f, y).compute(), _F, "features"),
    "LogME": (lambda f, y: LogME().update(f, y).compute(), _F, "features"),
}


def with_value(a, index, value):
    out = a.astype(np.float64)
    out[index] = value
    return out


def bad_values(a):
    """(description, bad value) for an input shaped like ``a``: 2-D numbers or 1-D labels."""
    n = len(a)
    cases = [("None", None), ("a string", "abc"), ("strings", ["a"] * n),
             ("ragged lists", [[0, 1], [1]] * (n // 2)), ("a scalar", 1), ("a dict", {}),
             ("objects", np.array([object()] * n)), ("3-D", a.reshape(n, -1, 1, 1)),
             ("empty", a[:0]), ("too short", a[:-1]), ("too long", np.concatenate([a, a[:1]]))]
    if a.ndim == 2:
        return cases + [("1-D", a[:, 0]), ("no columns", a[:, :0]),
                        ("NaN", with_value(a, (2, 1), np.nan)),
                        ("inf", with_value(a, (2, 1), np.inf)),
                        ("-inf", with_value(a, (2, 1), -np.inf)), ("complex dtype", a + 1j)]
    return cases + [("2-D", a[:, None]), ("NaN", with_value(a, 2, np.nan)),
                    ("inf", with_value(a, 2, np.inf)), ("negative", with_value(a, 2, -1)),
                    ("non-integer", a + 0.5), ("complex dtype", a + 1j)]


TARGET_ONLY = [("one class", np.zeros(len(_Y), dtype=int)), ("a missing class", 2 * _Y),
               ("a huge label", with_value(_Y, 0, 10**12).astype(np.int64))]
STREAMING = {"LEEP", "NCE", "HScore", "LogME"}
BAD_INPUTS = [
    pytest.param(name, argument, value, id=f"{name}-{argument}-{what}")
    for name, (_, valid, input_name) in CALLS.items()
    for argument, cases in [(input_name, bad_values(valid)),
                            ("target_labels", bad_values(_Y) + TARGET_ONLY)]
    for what, value in cases
    # a streaming batch may carry any label (one of 10**12 would need a table that wide), and
    # task_hardness takes source_labels=None to mean no source
    if not (name in STREAMING and what == "a huge label")
    and not (name == "task_hardness" and argument == "source_labels" and value is None)
]


@pytest.mark.parametrize("name,argument,value", BAD_INPUTS)
def test_bad_input_raises_a_value_error_naming_the_argument(name, argument, value):
    call, valid, input_name = CALLS[name]
    x, y = (value, _Y) if argument == input_name else (valid, value)
    with pytest.raises(ValueError, match=argument):
        call(x, y)


def test_bad_logme_targets_name_the_argument():
    t = _F[:, :2]
    for call in (logme, lambda f, *a, **k: LogME().update(f, *a, **k).compute()):
        for kwargs in ({}, {"target_labels": None}, {"target_labels": _Y, "target_values": t}):
            with pytest.raises(ValueError, match="target_labels, target_values: give exactly one"):
                call(_F, **kwargs)
        for _, value in bad_values(t):
            with pytest.raises(ValueError, match="target_values"):
                call(_F, target_values=value)
    # regression targets go by keyword; the positional argument is class labels only
    with pytest.raises(ValueError, match="target_labels: expected a 1-D array"):
        logme(_F, t)
    assert logme(_F, target_labels=_Y) == logme(_F, _Y)


def test_bad_batches_for_the_second_leep_pass():
    est = LEEP().update(_P, _Y)
    for batches_ in (None, 3, [(_P,)], [_P], [(_P, _Y, _Y)]):
        with pytest.raises(ValueError, match="batches: "):
            est.compute(batches_)


def test_bool_labels_count_as_classes_0_and_1():
    y = _Y % 2
    for name, (call, valid, _) in CALLS.items():
        assert call(valid, y.astype(bool)) == call(valid, y), name


def test_source_labels_may_be_any_nonnegative_integers():
    # unused source classes add nothing to H(Y | Z), so a huge label needs no huge table
    z = _Z.copy()
    z[z == z.max()] = 10**12
    assert nce(z, _Y) == nce(_Z, _Y)
    assert task_hardness(_Y, source_labels=z) == task_hardness(_Y, source_labels=_Z)


def test_module_docstrings_cite_nothing_outside_the_repository():
    import importlib
    import re

    for module in ("", "._common", ".hscore", ".leep", ".logme", ".nce", ".registry",
                   ".transrate"):
        doc = importlib.import_module(f"transferability.estimators{module}").__doc__
        assert not re.search(r"DESIGN\.md|\bC\d+\b", doc), module


def test_list_estimators_is_sorted():
    assert list_estimators() == sorted(list_estimators())
    assert list_estimators("features") == ["etran", "gbc", "h_score", "h_score_shrinkage", "knn",
                                           "logme", "ncti", "nleep", "parc", "sfda", "transrate"]
