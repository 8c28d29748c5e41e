"""Every estimator against a plain reference implementation of its paper's formula
(``benchmarks/reference_estimators.py``: loops, dense solves, ``np.cov``, ``pinv``, ``slogdet``)
on small random datasets, N < D included."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from benchmarks.reference_estimators import (
    h_score_reference,
    leep_reference,
    logme_reference,
    nce_reference,
    task_hardness_reference,
    transrate_reference,
)

from transferability.estimators import (
    LEEP,
    NCE,
    HScore,
    LogME,
    h_score,
    leep,
    logme,
    nce,
    task_hardness,
    transrate,
)

RTOL = 1e-8
SOURCES = 9  # source classes of the softmax


def dataset(n: int, d: int, classes: int, seed: int) -> dict[str, np.ndarray]:
    """Correlated features with class structure, a source softmax and its argmax, class
    labels 0..C-1 (all present) and three regression targets."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    f = (rng.normal(size=(n, d)) + rng.normal(scale=0.7, size=(classes, d))[y]) @ mix
    logits = f @ rng.normal(size=(d, SOURCES))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    t = f[:, :2] @ rng.normal(size=(2, 3)) + rng.normal(scale=0.5, size=(n, 3)) + 1.0
    return {"f": f, "y": y, "p": p, "z": p.argmax(axis=1), "t": t}


# N in {40, 300} x D in {5, 64} x C in {3, 7} (N < D at 40 x 64), and 12 x 20, where LogME's
# maximum for some classes lies at β → ∞ (an exact fit): that edge is swept over five seeds, so
# that one processor's rounding cannot decide it
SHAPES = [*itertools.product([40, 300], [5, 64], [3, 7]), *[(12, 20, 3)] * 5]
DATA = [pytest.param(dataset(n, d, c, seed=i), id=f"n{n}-d{d}-c{c}-s{i}")
        for i, (n, d, c) in enumerate(SHAPES)]
LARGE_N = [p for p, (n, d, _) in zip(DATA, SHAPES, strict=True) if n > d]


def batched(*arrays, size=17):
    cuts = np.arange(size, len(arrays[0]), size)
    return list(zip(*(np.split(a, cuts) for a in arrays), strict=True))


@pytest.mark.parametrize("data", DATA)
def test_leep(data):
    assert leep(data["p"], data["y"]) == pytest.approx(leep_reference(data["p"], data["y"]),
                                                       rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("data", DATA)
def test_nce_and_task_hardness(data):
    z, y = data["z"], data["y"]
    assert nce(z, y) == pytest.approx(nce_reference(z, y), rel=1e-10, abs=1e-12)
    assert task_hardness(y) == pytest.approx(task_hardness_reference(y), rel=1e-10)
    assert task_hardness(y, source_labels=z) == pytest.approx(task_hardness_reference(y, z),
                                                              rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("shrinkage", [False, True])
@pytest.mark.parametrize("data", DATA)
def test_h_score(data, shrinkage):
    assert h_score(data["f"], data["y"], shrinkage) == pytest.approx(
        h_score_reference(data["f"], data["y"], shrinkage), rel=RTOL)


@pytest.mark.parametrize("data", DATA)
def test_logme_on_class_labels(data):
    assert logme(data["f"], data["y"]) == pytest.approx(logme_reference(data["f"], data["y"]),
                                                        rel=RTOL)


@pytest.mark.parametrize("data", DATA)
def test_logme_on_regression_targets(data):
    f, t = data["f"], data["t"]
    assert logme(f, target_values=t) == pytest.approx(logme_reference(f, target_values=t),
                                                      rel=RTOL)
    assert logme(f, target_values=t[:, :1]) == pytest.approx(
        logme_reference(f, target_values=t[:, :1]), rel=RTOL)


@pytest.mark.parametrize("distortion", [1e-4, 1.0])
@pytest.mark.parametrize("data", DATA)
def test_transrate(data, distortion):
    assert transrate(data["f"], data["y"], distortion) == pytest.approx(
        transrate_reference(data["f"], data["y"], distortion), rel=RTOL)


# Streaming LogME sees only FᵀF, Fᵀy and yᵀy; where n <= D and a class is fit exactly its
# residual cancels to about 1e-7 (see LogME), so the streaming oracles use N > D.
@pytest.mark.parametrize("data", LARGE_N)
def test_streaming_estimators(data):
    f, y, p, z, t = data["f"], data["y"], data["p"], data["z"], data["t"]
    est = LEEP()
    for pb, yb in batched(p, y):
        est.update(pb, yb)
    assert est.compute(batched(p, y)) == pytest.approx(leep_reference(p, y), rel=1e-10)
    est = NCE()
    for zb, yb in batched(z, y):
        est.update(zb, yb)
    assert est.compute() == pytest.approx(nce_reference(z, y), rel=1e-10, abs=1e-12)
    for shrinkage in (False, True):
        est = HScore(shrinkage)
        for fb, yb in batched(f, y):
            est.update(fb, yb)
        assert est.compute() == pytest.approx(h_score_reference(f, y, shrinkage), rel=RTOL)
    est, reg = LogME(), LogME()
    for fb, yb, tb in batched(f, y, t):
        est.update(fb, yb)
        reg.update(fb, target_values=tb)
    assert est.compute() == pytest.approx(logme_reference(f, y), rel=RTOL)
    assert reg.compute() == pytest.approx(logme_reference(f, target_values=t), rel=RTOL)
