"""Estimators against straightforward reference implementations, N = 20,000, D = 1,024.

Each reference is what a plain script does: loops over classes, dense solves, ``np.cov`` and
``pinv``. The table gives both times, their ratio and the largest difference in value. LogME's
time is also split into forming FᵀF + its eigendecomposition and the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np
from sklearn.covariance import ledoit_wolf
from threadpoolctl import threadpool_limits

from transferability.estimators import h_score, leep, logme, nce, transrate
from transferability.estimators._common import class_sums
from transferability.estimators.logme import LogME, _coordinates, _eig, _max_evidence

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


# --- references: the obvious implementations --------------------------------------------


def logme_reference(f: np.ndarray, y: np.ndarray, classes: list[int]) -> list[float]:
    """Per class: its own fixed point, with a dense D × D solve for m at every iteration."""
    f = f.astype(np.float64)
    n, d = f.shape
    ftf = f.T @ f
    sigma = np.linalg.eigvalsh(ftf)
    out = []
    for c in classes:
        yc = (y == c).astype(np.float64)
        fty = f.T @ yc
        alpha, beta = 1.0, 1.0
        for _ in range(1000):
            m = beta * np.linalg.solve(alpha * np.eye(d) + beta * ftf, fty)
            gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
            res = float(np.sum((f @ m - yc) ** 2))
            new_alpha, new_beta = gamma / float(m @ m), (n - gamma) / res
            done = abs(new_alpha / new_beta - alpha / beta) <= 1e-10 * alpha / beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        m = beta * np.linalg.solve(alpha * np.eye(d) + beta * ftf, fty)
        res, mm = float(np.sum((f @ m - yc) ** 2)), float(m @ m)
        evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                    - beta / 2 * res - alpha / 2 * mm
                    - 0.5 * np.sum(np.log(alpha + beta * sigma)))
        out.append(evidence / n)
    return out


def h_score_reference(f: np.ndarray, y: np.ndarray, shrinkage: bool = False) -> float:
    f = f.astype(np.float64)
    g = np.zeros_like(f)
    for c in range(int(y.max()) + 1):
        g[y == c] = f[y == c].mean(axis=0)
    covg = np.cov(g, rowvar=False, bias=True)
    if not shrinkage:
        return float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False, bias=True)) @ covg))
    cov, delta = ledoit_wolf(f)
    return float(np.trace(np.linalg.pinv(cov) @ ((1 - delta) * covg)))


def leep_reference(p: np.ndarray, y: np.ndarray) -> float:
    p = p.astype(np.float64)
    classes = int(y.max()) + 1
    joint = np.stack([p[y == c].sum(axis=0) for c in range(classes)]) / len(y)
    cond = joint / joint.sum(axis=0, keepdims=True)
    eep = np.zeros(len(y))
    for c in range(classes):
        eep[y == c] = p[y == c] @ cond[c]
    return float(np.mean(np.log(eep)))


def nce_reference(z: np.ndarray, y: np.ndarray) -> float:
    total = 0.0
    for s in np.unique(z):
        ys = y[z == s]
        p = np.bincount(ys) / len(ys)
        p = p[p > 0]
        total += len(ys) / len(y) * float(np.sum(p * np.log(p)))
    return total


def transrate_reference(f: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    z = f.astype(np.float64)
    z = z - z.mean(axis=0)
    n, d = z.shape

    def rate(x: np.ndarray) -> float:
        return 0.5 * np.linalg.slogdet(np.eye(d) + d / (len(x) * eps) * x.T @ x)[1]

    return rate(z) - sum((y == c).mean() * rate(z[y == c]) for c in range(int(y.max()) + 1))


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
    t_eig, (sigma, vecs) = timed(lambda: _eig(f.T @ f))

    def rest() -> None:
        spectrum = _coordinates(sigma, vecs, class_sums(f, y, len(yy)).T, yy, gram=False)
        _max_evidence(*spectrum, yy, len(y), f.shape[1])

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
    t_one, _ = timed(partial(logme_reference, f, y, [0]), repeat_below_s=0)
    if t_one * num_classes > REF_BUDGET_S:
        k = max(2, int(REF_BUDGET_S / 3 / t_one))
        classes, note = classes[:k], f"reference on {k}/{num_classes} classes, time extrapolated"
    t_ref, ref = timed(partial(logme_reference, f, y, classes), repeat_below_s=0)
    t_ref *= num_classes / len(classes)
    diff = max(float(np.max(np.abs(np.asarray(ref) - per_class[classes]))),
               abs(ours - float(per_class.mean())))
    return "logme", num_classes, t_ours, t_ref, diff, note


def main() -> None:
    # One BLAS thread for ours and the references alike: on a shared CPU, multi-threaded BLAS
    # stalls whenever another process holds a core, and the times stop meaning anything.
    with threadpool_limits(limits=1):
        run()


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
