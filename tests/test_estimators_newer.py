"""N-LEEP, SFDA, PARC, GBC, kNN and ETran: hand-computed cases, the invariances their
definitions imply, the direction of separable against random features, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from transferability.estimators import (
    etran,
    etran_terms,
    gbc,
    get_estimator,
    knn_accuracy,
    leep,
    mixture_posteriors,
    ncti,
    ncti_across,
    ncti_terms,
    nleep,
    parc,
    sfda,
)

NEWER = ["nleep", "sfda", "parc", "gbc", "knn", "etran", "ncti"]
SCALE_FREE = ["nleep", "parc", "gbc", "knn"]


def task(n=120, d=12, classes=4, sep=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    f = (rng.normal(size=(n, d)) + sep * rng.normal(size=(classes, d))[y]) @ mix
    return f, y


# --- hand-computed cases --------------------------------------------------------------------


def test_knn_by_hand():
    # angles 0, 0.05, π/2, 1.54, 0.02 rad: with k = 1 samples 0, 1 and 4 find each other
    # across classes 0 and 1 (0 ↔ 4, 1 → 4, 4 → 0), samples 2 and 3 find each other
    f = np.array([[1, 0], [2, 0.1], [0, 1], [0.1, 3], [1, 0.02]])
    y = np.array([0, 0, 1, 1, 1])
    assert knn_accuracy(f, y, k=1) == 0.4
    assert knn_accuracy(f * np.array([[3], [0.1], [7], [2], [5]]), y, k=1) == 0.4  # cosine
    # k = 3: sample 4's neighbours are 0, 1 (class 0) and 3: it is wrong; 0 and 1 see 4 and
    # the other class-0 sample and 3 or 2: right; 2 and 3 see each other and two class-0
    # samples: wrong
    assert knn_accuracy(f, y, k=3) == 0.4


def test_parc_of_perfectly_grouped_features_by_hand():
    # one-hot features plus tiny distinct noise: every same-class pair is less dissimilar
    # than every other, so the ranks are 1..m1 and m1+1..M and the point-biserial ρ is
    # √(3p(1 − p) M²/(M² − 1)) with M = 28 pairs, p = 24/28 of them across classes
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    f = np.eye(4)[y] + 1e-3 * np.random.default_rng(0).normal(size=(8, 4))
    p = 24 / 28
    expected = np.sqrt(3 * p * (1 - p) * 28**2 / (28**2 - 1))
    assert parc(f, y, dims=3) == pytest.approx(expected, rel=1e-12)  # the one-hot part


def test_gbc_by_hand():
    # 1-D classes {-1, 1} and {3, 5}: means 0 and 4, variances 1, so D_B = 16/8 = 2 for
    # both ordered pairs
    f = np.array([[-1.0], [1.0], [3.0], [5.0]])
    y = np.array([0, 0, 1, 1])
    for gaussian in ("spherical", "diagonal"):
        assert gbc(f, y, gaussian=gaussian) == pytest.approx(-2 * np.exp(-2), rel=1e-12)


def test_etran_by_hand():
    # 1-D: energy = the value; the lowest is -1. Nearest-mean logits at x = ∓1 give the true
    # class probability 1/(1 + e⁻²) for every sample.
    f = np.array([[-1.0], [-1.0], [1.0], [1.0]])
    y = np.array([0, 0, 1, 1])
    assert etran_terms(f, y) == pytest.approx((-1.0, 1 / (1 + np.exp(-2))), rel=1e-12)
    assert etran(f, y) == pytest.approx(-1 + 1 / (1 + np.exp(-2)), rel=1e-12)


def test_ncti_by_hand():
    # 1-D classes {-3, -1} and {1, 3}: k = 1, so S_w(λ) = S_w = 1 whatever λ; S_b = 4, the
    # projection is ±x: S_seli = ‖x‖ = √20; the LDA logit gap is 4x, so the true-class
    # probabilities are σ(12), σ(4), σ(4), σ(12); each class's 2 × 2 block M has
    # ‖M‖_* = √(‖M‖_F² + 2|det M|)
    f = np.array([[-3.0], [-1.0], [1.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    s12, s4 = 1 / (1 + np.exp(-12)), 1 / (1 + np.exp(-4))
    block = np.array([[s12, 1 - s12], [s4, 1 - s4]])
    nuc = np.sqrt((block**2).sum() + 2 * abs(np.linalg.det(block)))
    expected = (np.sqrt(20), (s12 + s4) / 2, np.log(2 * nuc))
    assert ncti_terms(f, y) == pytest.approx(expected, rel=1e-12)
    assert ncti(f, y) == pytest.approx(expected[0] + expected[1] - expected[2], rel=1e-12)


def test_ncti_across_normalises_each_term_over_the_models():
    terms = [[10.0, 0.5, 3.0], [30.0, 0.9, 2.0], [20.0, 0.7, 4.0]]
    # min–max per column: seli 0, 1, .5; ncc 0, 1, .5; vc .5, 0, 1
    assert ncti_across(terms) == pytest.approx([-0.5, 2.0, 0.0], rel=1e-12)
    with pytest.raises(ValueError, match="terms: expected M × 3"):
        ncti_across([[1.0, 2.0, 3.0]])


def test_nleep_is_leep_of_the_mixture_posteriors():
    f, y = task()
    probs = mixture_posteriors(f, 20, variance=0.8, seed=3)
    assert nleep(f, y, seed=3) == pytest.approx(leep(probs, y), rel=1e-12)
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_sfda_of_well_separated_classes_is_near_one():
    f, y = task(sep=30.0)
    assert 0.95 < sfda(f, y) <= 1.0


# --- invariances and direction --------------------------------------------------------------


@pytest.mark.parametrize("name", NEWER)
def test_permuting_classes_leaves_the_score_unchanged(name):
    f, y = task()
    renamed = np.array([2, 0, 3, 1])[y]
    est = get_estimator(name)
    assert est(f, renamed) == pytest.approx(est(f, y), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", SCALE_FREE)
def test_scaling_the_features_leaves_scale_free_scores_unchanged(name):
    f, y = task()
    est = get_estimator(name)
    for scale in (1e-3, 7.0, 2.0**40):
        assert est(f * scale, y) == pytest.approx(est(f, y), rel=1e-6, abs=1e-9), scale


@pytest.mark.parametrize("name", NEWER)
def test_separable_features_score_above_random_ones(name):
    f, y = task()
    noise = np.random.default_rng(9).normal(size=f.shape) * f.std()
    est = get_estimator(name)
    assert est(f, y) > est(noise, y)


@pytest.mark.parametrize("name", NEWER)
@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_extreme_scales_give_a_number_or_a_clear_error(name, scale):
    f, y = task()
    try:
        value = get_estimator(name)(f * scale, y)
    except ValueError as exc:
        assert "features" in str(exc)
    else:
        assert np.isfinite(value)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEWER)
def test_bad_input_is_a_clear_value_error(name):
    f, y = task()
    est = get_estimator(name)
    with pytest.raises(ValueError, match="features: expected a 2-D"):
        est(f[:, 0], y)
    bad = f.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="features: contains 1 NaN"):
        est(bad, y)
    with pytest.raises(ValueError, match="target_labels: .*missing class"):
        est(f, np.where(y == 1, 4, y))
    with pytest.raises(ValueError, match="length mismatch"):
        est(f[:-1], y)


def test_too_few_samples_and_too_many_components_are_refused():
    f, y = task(n=12, d=5, classes=4)
    y1 = y.copy()
    y1[y1 == 3] = 0
    y1[0] = 3  # class 3 has a single sample
    with pytest.raises(ValueError, match="target_labels: class 3 has 1 sample"):
        gbc(f, y1)
    with pytest.raises(ValueError, match="target_labels: 5 samples for 4 classes"):
        nleep(f[:5], np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="dims: 6 principal components .* rank 5"):
        gbc(f, y, dims=6)
    with pytest.raises(ValueError, match="dims: 9 principal components .* rank 5"):
        parc(f, y, dims=9)
    with pytest.raises(ValueError, match="k: "):
        knn_accuracy(f, y, k=12)
    with pytest.raises(ValueError, match="gaussian: "):
        gbc(f, y, gaussian="full")
    with pytest.raises(ValueError, match="target_labels: class 3 has 1 sample"):
        ncti(f, y1)
    with pytest.raises(ValueError, match="components: 6 principal components .* rank 5"):
        ncti(f, y, components=6)


def test_ncti_default_components_stop_at_the_rank():
    # 300-d features of rank 20 (dead units, as after a ReLU): the default takes the 20
    # axes there are, where 64 would be refused
    f, y = task(n=120, d=20)
    wide = np.hstack([f, np.zeros((120, 280))]) @ np.linalg.qr(
        np.random.default_rng(1).normal(size=(300, 300)))[0]
    assert ncti_terms(wide, y) == pytest.approx(ncti_terms(wide, y, components=20), rel=1e-9)
    assert ncti_terms(wide, y) == pytest.approx(ncti_terms(f, y), rel=1e-6)
    with pytest.raises(ValueError, match="components: 64 principal components .* rank 20"):
        ncti(wide, y, components=64)


def test_knn_default_k_fits_tiny_targets():
    f = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    y = np.array([0, 0, 1, 1])
    # k = 3 = N − 1: every sample sees its partner and both others, a 1 : 2 vote against it
    assert knn_accuracy(f, y) == 0.0
    assert knn_accuracy(f, y, k=1) == 1.0


def test_estimators_needing_several_per_class_are_refused_up_front():
    from transferability.estimators import check_estimator_data, get_estimator

    assert get_estimator("gbc").min_per_class == 2 and get_estimator("leep").min_per_class == 1
    check_estimator_data(["leep", "logme"], [1, 2, 3])  # 6 samples, 3 classes: defined
    with pytest.raises(ValueError, match=r"smallest class has 1 .*gbc, nleep need\(s\) at least 2"):
        check_estimator_data(["logme", "gbc", "nleep"], [1, 2, 3], "train")
    with pytest.raises(ValueError, match="3 samples for 3 classes"):
        check_estimator_data(["logme"], [1, 1, 1])
