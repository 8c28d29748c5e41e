"""Ranking statistics against scipy, bootstrap intervals against an explicit loop, and the
model-selection view (top-1, regret) worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats as st

from transferability.stats import (
    bootstrap_ci,
    correlation_table,
    kendall,
    pearson,
    regret,
    spearman,
    top1_hit,
    weighted_tau,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=12)
Y = X + RNG.normal(scale=0.8, size=12)


def test_correlations_match_scipy():
    assert pearson(X, Y) == pytest.approx(st.pearsonr(X, Y).statistic, abs=1e-14)
    assert spearman(X, Y) == pytest.approx(st.spearmanr(X, Y).statistic, abs=1e-14)
    assert kendall(X, Y) == pytest.approx(st.kendalltau(X, Y).statistic, abs=1e-14)
    assert weighted_tau(X, Y) == pytest.approx(st.weightedtau(X, Y).statistic, abs=1e-14)
    assert isinstance(pearson(torch.tensor(X), list(Y)), float)


def test_constant_input_gives_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (pearson, spearman, kendall, weighted_tau):
            assert np.isnan(fn(np.ones(5), X[:5]))


def manual_bootstrap(fn, x, y, n_boot, level, seed):
    """The definition, one resample at a time, skipping undefined (NaN) resamples."""
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    values = []
    for i in idx:
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            values.append(fn(x[i], y[i]).statistic)
    return np.quantile(values, [(1 - level) / 2, (1 + level) / 2])


@pytest.mark.parametrize("ours,ref", [(pearson, st.pearsonr), (spearman, st.spearmanr),
                                      (weighted_tau, st.weightedtau)])
def test_bootstrap_ci_equals_explicit_loop(ours, ref):
    low, high = bootstrap_ci(ours, X, Y, n_boot=300, level=0.9, seed=3)
    np.testing.assert_allclose([low, high], manual_bootstrap(ref, X, Y, 300, 0.9, 3),
                               atol=1e-12)
    assert low <= ours(X, Y) <= high
    assert bootstrap_ci(ours, X, Y, n_boot=300, level=0.9, seed=3) == (low, high)


def test_bootstrap_skips_degenerate_resamples():
    x = np.array([0.0, 0.0, 0.0, 1.0])  # many resamples draw only zeros
    y = np.array([0.1, 0.2, 0.3, 0.9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = bootstrap_ci(spearman, x, y, n_boot=200, seed=1)
    np.testing.assert_allclose(got, manual_bootstrap(st.spearmanr, x, y, 200, 0.95, 1),
                               atol=1e-12)
    assert all(np.isnan(bootstrap_ci(pearson, np.ones(3), y[:3], n_boot=20)))


def test_top1_and_regret_by_hand():
    truth = [0.70, 0.60, 0.80]
    # scores pick model 1 (truth 0.60); the best is model 2 (0.80): regret 0.20, no hit.
    assert not top1_hit([0.1, 0.9, 0.5], truth)
    assert regret([0.1, 0.9, 0.5], truth) == pytest.approx(0.20)
    # scores pick model 2: a hit, regret 0.
    assert top1_hit([0.1, 0.2, 0.5], truth)
    assert regret([0.1, 0.2, 0.5], truth) == 0.0
    # a tie for best in truth: either best model is a hit
    assert top1_hit([3.0, 1.0, 2.0], [0.8, 0.6, 0.8])


def test_correlation_table_rows():
    scores = {"good": X, "reversed": -X}
    rows = correlation_table(scores, Y, n_boot=200, seed=0)
    assert [r.estimator for r in rows] == ["good", "reversed"]
    good, rev = rows
    assert good.weighted_tau == pytest.approx(weighted_tau(X, Y))
    assert good.spearman == pytest.approx(spearman(X, Y))
    assert good.pearson == pytest.approx(pearson(X, Y))
    assert (good.pearson_low, good.pearson_high) == bootstrap_ci(pearson, X, Y, 200, seed=0)
    assert rev.spearman == pytest.approx(-good.spearman)
    assert (rev.spearman_low, rev.spearman_high) == pytest.approx(
        (-good.spearman_high, -good.spearman_low))  # same resamples for every row
    assert good.regret == regret(X, Y) and good.top1 == top1_hit(X, Y)
    row = good.as_dict()
    assert list(row)[:4] == ["estimator", "weighted_tau", "weighted_tau_low",
                             "weighted_tau_high"]


def test_bad_input():
    with pytest.raises(ValueError, match="length mismatch: x has 12, y has 11"):
        pearson(X, Y[:11])
    with pytest.raises(ValueError, match="x: contains 1 NaN"):
        spearman(np.r_[X[:-1], np.nan], Y)
    with pytest.raises(ValueError, match="x: needs at least 2 entries, got 1"):
        kendall(X[:1], Y[:1])
    with pytest.raises(ValueError, match="level: expected a number in"):
        bootstrap_ci(pearson, X, Y, level=1.5)
    with pytest.raises(ValueError, match="n_boot: expected a positive integer"):
        bootstrap_ci(pearson, X, Y, n_boot=0)
    with pytest.raises(ValueError, match="scores: expected a non-empty mapping"):
        correlation_table({}, Y)
    with pytest.raises(ValueError, match=r"length mismatch: scores\['a'\] has 11, truth has 12"):
        correlation_table({"a": X[:11]}, Y)
    with pytest.raises(ValueError, match="truth: expected a 1-D array"):
        regret(X, np.ones((12, 2)))


def test_batched_weighted_tau_equals_scipy_with_ties():
    """The vectorised bootstrap path must give scipy's weightedtau, ties included."""
    from transferability.stats import _weighted_tau_rows

    rng = np.random.default_rng(0)
    a = np.vstack([rng.integers(0, 4, size=(50, 8)), rng.normal(size=(50, 8))]).astype(float)
    b = np.vstack([rng.normal(size=(50, 8)), rng.integers(0, 3, size=(50, 8))]).astype(float)
    ours = _weighted_tau_rows(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.array([st.weightedtau(x, y).statistic for x, y in zip(a, b, strict=True)])
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.allclose(ours[ok], ref[ok], atol=1e-12)


def test_claim_t_interval_matches_scipy_and_decides():
    from scipy import stats as st

    from transferability.stats import claim

    d = [0.05, 0.07, 0.06, 0.08]
    c = claim("a beats b", d)
    low, high = st.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=st.sem(d))
    assert c.verdict == "holds" and c.n == 4
    assert c.low == pytest.approx(low) and c.high == pytest.approx(high)
    assert claim("b", [-0.05, -0.07, -0.06]).verdict == "does not hold"
    assert claim("c", [0.05, -0.07, 0.06]).verdict == "inconclusive"
    assert claim("few seeds", [0.5, 0.6]).verdict == "inconclusive"  # under min_n
    assert "inconclusive" in str(claim("one", [1.0]))


def test_claim_bootstrap_over_images():
    from transferability.stats import claim

    rng = np.random.default_rng(0)
    d = rng.integers(0, 2, 500) - rng.integers(0, 2, 500) * 0.6  # mean ≈ +0.2
    c = claim("x", d, interval="bootstrap")
    assert c.low < c.difference < c.high and c.verdict == "holds"
    assert c.difference == pytest.approx(d.mean())
    with pytest.raises(ValueError, match="differences"):
        claim("x", [0.1, float("nan"), 0.2])
    with pytest.raises(ValueError, match="interval"):
        claim("x", [0.1, 0.2, 0.3], interval="z")
    assert c.interval == "bootstrap" and "bootstrap 95% CI" in str(c)
    old = {**c.to_dict(), "schema": 1, "method": "bootstrap"}  # before the rename
    del old["interval"]
    assert type(c).from_dict(old) == c


def test_bootstrap_difference_pairs_the_resamples():
    from transferability.stats import bootstrap_ci, bootstrap_difference, weighted_tau

    rng = np.random.default_rng(0)
    truth = rng.normal(size=12)
    good, bad = truth + 0.1 * rng.normal(size=12), rng.normal(size=12)
    # a score against itself: every resample's difference is exactly 0
    assert bootstrap_difference(weighted_tau, good, good, truth) == (0.0, 0.0, 0.0)
    diff, low, high = bootstrap_difference(weighted_tau, good, bad, truth, seed=3)
    assert diff == pytest.approx(weighted_tau(good, truth) - weighted_tau(bad, truth))
    assert low <= diff <= high and low > 0  # a near-copy of the truth beats noise
    # the same resamples as bootstrap_ci: with a constant second score of τ undefined (NaN),
    # no resample is left
    assert np.isnan(bootstrap_difference(weighted_tau, good, np.ones(12), truth)[1])
    assert bootstrap_ci(weighted_tau, good, truth, seed=3)[0] > 0
