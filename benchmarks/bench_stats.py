"""A study's assembly: bootstrap CIs of every score's agreement over 84 sources.

``correlation_table`` with 1,000 resamples is what a study's last job runs per target and
truth; the weighted τ dominates it. Side by side: the library, scipy's ``weightedtau``
once per resample, and a float64 O(n²) pairwise formulation over all resamples at once
(the pairwise weight and sign matrices held in full). All three give the same values.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats as st

from transferability.stats import _weighted_tau_rows, correlation_table

SOURCES, SCORES, N_BOOT = 84, 15, 1000


def pairwise_matrices(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weighted τ of every row pair with B × n × n float weight and sign matrices."""
    def ranked(a, b):
        order = np.lexsort((-b, -a), axis=1)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(a.shape[1])[None].repeat(len(a), 0), axis=1)
        w = 1.0 / (rank + 1.0)
        weight = w[:, :, None] + w[:, None, :]
        sa = np.sign(a[:, :, None] - a[:, None, :])
        sb = np.sign(b[:, :, None] - b[:, None, :])
        num = (weight * sa * sb).sum(axis=(1, 2))
        den = np.sqrt((weight * (sa != 0)).sum(axis=(1, 2)) * (weight * (sb != 0)).sum(axis=(1, 2)))
        return num / den
    return (ranked(a, b) + ranked(b, a)) / 2


def _best(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, SOURCES, size=(N_BOOT, SOURCES))
    x, y = rng.normal(size=SOURCES), np.round(rng.normal(size=SOURCES), 1)  # with ties
    a, b = x[idx], y[idx]
    ours = _weighted_tau_rows(a, b)
    scipy = np.array([st.weightedtau(p, q).statistic for p, q in zip(a, b, strict=True)])
    dense = pairwise_matrices(a, b)
    gap = max(np.abs(ours - scipy).max(), np.abs(dense - scipy).max())
    times = {"library": _best(lambda: _weighted_tau_rows(a, b)),
             "dense float pairs": _best(lambda: pairwise_matrices(a, b)),
             "scipy per resample": _best(lambda: [st.weightedtau(p, q) for p, q in
                                                  zip(a, b, strict=True)], 1)}
    print(f"weighted τ of {N_BOOT} bootstrap resamples of {SOURCES} sources "
          f"(max |Δ| vs scipy {gap:.1e}):")
    for name, seconds in times.items():
        print(f"  {name:20s} {seconds * 1000:8.1f} ms   library is "
              f"{seconds / times['library']:5.1f}× faster")
    scores = {f"score{i}": rng.normal(size=SOURCES) for i in range(SCORES)}
    table = _best(lambda: correlation_table(scores, x, n_boot=N_BOOT), 1)
    print(f"  correlation_table, {SCORES} scores × 3 statistics with CIs: {table:.2f} s "
          f"(one truth of one target of a study)")


if __name__ == "__main__":
    main()
