"""Estimators against straightforward reference implementations, N = 20,000, D = 1,024;
then the newer estimators at N = 10,000, D = 2,048, C = 100 against LogME and against their
authors' code (``benchmarks/reference_authors.py``).

Each reference (in ``benchmarks/reference_estimators.py``) is what a plain script does: loops
over classes, dense solves, ``np.cov`` and ``pinv``. The table gives both times, their ratio
and the largest difference in value. LogME's time is also split into forming FᵀF + its
eigendecomposition and the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.reference_authors import (
    etran_authors,
    gbc_authors,
    ncti_authors,
    nleep_authors,
    parc_authors,
    sfda_authors,
)
from benchmarks.reference_estimators import (
    h_score_reference,
    leep_reference,
    logme_columns_reference,
    nce_reference,
    transrate_reference,
)
from transferability.estimators import (
    etran,
    gbc,
    h_score,
    knn_accuracy,
    leep,
    logme,
    nce,
    ncti,
    nleep,
    parc,
    sfda,
    transrate,
)
from transferability.estimators._common import class_sums, nonzero_eigh
from transferability.estimators.logme import LogME, _coordinates, _max_evidence

N, D, SOURCE_CLASSES, SEED = 20_000, 1_024, 1_000, 0
REF_BUDGET_S = 60.0  # a reference slower than this is run on a subset of classes


def make_data(num_classes: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Features with class structure (float32, as extracted), source softmax and argmax."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(N) % num_classes)
    means = rng.normal(scale=0.5, size=(num_classes, D))
    mix = rng.normal(size=(D, D)) / np.sqrt(D)  # correlated feature dimensions
    features = ((rng.normal(size=(N, D)) + means[labels]) @ mix).astype(np.float32)
    logits = features @ rng.normal(scale=0.1, size=(D, SOURCE_CLASSES)).astype(np.float32)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return {"features": features, "labels": labels, "probs": probs,
            "source": probs.argmax(axis=1)}


# --- timing --------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeat_below_s: float = 2.0) -> tuple[float, object]:
    """Seconds for ``fn()`` and its value; best of 3 when a run is short (the CPU is shared)."""
    best, value = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
        if best > repeat_below_s:
            break
    return best, value


def logme_split(f: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Seconds spent forming FᵀF + eigendecomposing it, and in everything else of logme()."""
    f = f.astype(np.float64)
    yy = np.bincount(y).astype(np.float64)
    t_eig, (sigma, vecs) = timed(lambda: nonzero_eigh(f.T @ f))

    def rest() -> None:
        spectrum = _coordinates(sigma, vecs, class_sums(f, y, len(yy)).T, yy, gram=False)
        _max_evidence(*spectrum, yy, len(y))

    return t_eig, timed(rest)[0]


def cases(data: dict[str, np.ndarray]) -> list[tuple[str, Callable, Callable]]:
    f, y, p, z = data["features"], data["labels"], data["probs"], data["source"]
    return [
        ("h_score", partial(h_score, f, y), partial(h_score_reference, f, y)),
        ("h_score_shrinkage", partial(h_score, f, y, shrinkage=True),
         partial(h_score_reference, f, y, shrinkage=True)),
        ("leep", partial(leep, p, y), partial(leep_reference, p, y)),
        ("nce", partial(nce, z, y), partial(nce_reference, z, y)),
        ("transrate", partial(transrate, f, y), partial(transrate_reference, f, y)),
    ]


def bench_logme(f: np.ndarray, y: np.ndarray) -> tuple:
    num_classes = int(y.max()) + 1
    t_ours, ours = timed(partial(logme, f, y))
    per_class = LogME().update(f, y).per_target()[0]
    classes, note = list(range(num_classes)), ""
    columns = np.eye(num_classes)[y]
    t_one, _ = timed(partial(logme_columns_reference, f, columns[:, :1]), repeat_below_s=0)
    if t_one * num_classes > REF_BUDGET_S:
        k = max(2, int(REF_BUDGET_S / 3 / t_one))
        classes, note = classes[:k], f"reference on {k}/{num_classes} classes, time extrapolated"
    t_ref, ref = timed(partial(logme_columns_reference, f, columns[:, classes]),
                       repeat_below_s=0)
    t_ref *= num_classes / len(classes)
    diff = max(float(np.max(np.abs(np.asarray(ref) - per_class[classes]))),
               abs(ours - float(per_class.mean())))
    return "logme", num_classes, t_ours, t_ref, diff, note


NEWER_N, NEWER_D, NEWER_C = 10_000, 2_048, 100
#: the authors' code is skipped where it would take longer than this (N-LEEP on isotropic
#: features: 500 full-covariance components on ~1,600 PCA dimensions)
AUTHORS_SKIP = {("nleep", "isotropic"): "the authors' GMM on ~1,600 PCA dims: > 3 min"}


def newer_data(intrinsic: int | None, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Class-structured float32 features, N × D, C classes; ``intrinsic`` dimensions of
    signal (plus 1% isotropic noise) or isotropic features (``None``)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(NEWER_N) % NEWER_C)
    k = intrinsic or NEWER_D
    latent = rng.normal(size=(NEWER_N, k)) + 0.5 * rng.normal(size=(NEWER_C, k))[y]
    f = latent if intrinsic is None else (
        latent @ rng.normal(size=(k, NEWER_D)) / np.sqrt(k)
        + 0.01 * rng.normal(size=(NEWER_N, NEWER_D)))
    return f.astype(np.float32), y


def run_newer() -> None:
    """Each newer estimator's time over LogME's and over its authors' code's, same inputs."""
    ours = {"sfda": sfda, "gbc": gbc, "knn": knn_accuracy, "parc": parc, "etran": etran,
            "ncti": ncti, "nleep": nleep}
    authors = {"sfda": lambda f, y: sfda_authors(f, y, power_iterations=3),
               "gbc": lambda f, y: gbc_authors(f, y, 64, absolute_floor=1e-4),
               "parc": lambda f, y: parc_authors(f, y, randomized=True, rounding=True),
               "etran": lambda f, y: sum(etran_authors(f, y)),
               "ncti": ncti_authors,
               "nleep": lambda f, y: nleep_authors(f, y, log=False, standardise=False,
                                                       cap=False)}
    print(f"\nnewer estimators: N={NEWER_N}, D={NEWER_D}, C={NEWER_C}, float32 inputs, one "
          "BLAS thread; ratio = time / LogME's time, speed-up = authors' time / ours")
    print(f"{'estimator':<8} {'features':<14} {'ours s':>8} {'/LogME':>7} {'authors s':>10} "
          f"{'speed-up':>9}")
    for label, intrinsic in (("isotropic", None), ("intrinsic 64", 64)):
        f, y = newer_data(intrinsic)
        t_logme, _ = timed(partial(logme, f, y), repeat_below_s=0)
        print(f"{'logme':<8} {label:<14} {t_logme:>8.2f} {1.0:>7.2f}", flush=True)
        for name, fn in ours.items():
            if label != "isotropic" and name != "nleep":
                continue  # only N-LEEP depends on the intrinsic dimension
            t_o, _ = timed(partial(fn, f, y), repeat_below_s=0)
            note = AUTHORS_SKIP.get((name, label.split()[0]))
            t_a = float("nan")
            if name in authors and note is None:
                t_a, _ = timed(partial(authors[name], np.array(f, dtype=np.float64), y),
                               repeat_below_s=0)
            print(f"{name:<8} {label:<14} {t_o:>8.2f} {t_o / t_logme:>7.2f} {t_a:>10.2f} "
                  f"{t_a / t_o:>8.1f}x" + (f"  ({note})" if note else ""), flush=True)


def main() -> None:
    # One BLAS thread for ours and the references alike: on a shared CPU, multi-threaded BLAS
    # stalls whenever another process holds a core, and the times stop meaning anything.
    with threadpool_limits(limits=1):
        run()
        run_newer()


def run() -> None:
    rows = []
    for num_classes in (10, 100):
        data = make_data(num_classes)
        rows.append(bench_logme(data["features"], data["labels"]))
        for name, ours_fn, ref_fn in cases(data):
            t_o, v_o = timed(ours_fn)
            t_r, v_r = timed(ref_fn)
            rows.append((name, num_classes, t_o, t_r, abs(v_o - v_r), ""))
        t_eig, t_rest = logme_split(data["features"], data["labels"])
        print(f"LogME split at C={num_classes}: FᵀF + eigendecomposition {t_eig:.3f} s, "
              f"fixed-point iterations and the rest {t_rest:.4f} s", flush=True)
    print(f"\nN={N}, D={D}, source classes={SOURCE_CLASSES}, float32 inputs; "
          "one BLAS thread; times are the best of 3 runs where a run takes under 2 s")
    print(f"{'estimator':<18} {'C':>4} {'ours s':>8} {'ref s':>8} {'ratio':>7} {'max|diff|':>10}")
    for name, c, t_o, t_r, diff, note in rows:
        print(f"{name:<18} {c:>4} {t_o:>8.3f} {t_r:>8.3f} {t_r / t_o:>6.1f}x {diff:>10.2e}"
              + (f"  ({note})" if note else ""))


if __name__ == "__main__":
    main()
