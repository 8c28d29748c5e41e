"""Reference implementations of the estimators: each paper's formula written out plainly.

Loops over classes (or samples), dense solves, ``np.cov``, ``pinv`` and ``slogdet``, in float64,
with no attention to speed or to extreme magnitudes. ``bench_estimators`` times the library
against them and ``tests/test_estimator_oracles.py`` checks the library's values against them.
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf

__all__ = ["leep_reference", "nce_reference", "task_hardness_reference", "h_score_reference",
           "logme_reference", "logme_columns_reference", "transrate_reference"]


def leep_reference(p: np.ndarray, y: np.ndarray) -> float:
    """LEEP (Nguyen et al. 2020, Sec. 3): empirical P̂(y, z), P̂(y | z) = P̂(y, z)/P̂(z), then
    the mean over samples of log Σ_z P̂(yᵢ | z) θ(xᵢ)_z."""
    p = np.asarray(p, dtype=np.float64)
    classes = int(y.max()) + 1
    joint = np.stack([p[y == c].sum(axis=0) for c in range(classes)]) / len(y)
    marginal = joint.sum(axis=0, keepdims=True)
    cond = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    eep = np.zeros(len(y))
    for c in range(classes):
        eep[y == c] = p[y == c] @ cond[c]
    return float(np.mean(np.log(eep)))


def nce_reference(z: np.ndarray, y: np.ndarray) -> float:
    """NCE (Tran et al. 2019): −H(Y | Z) = Σ_z P̂(z) Σ_y P̂(y | z) log P̂(y | z)."""
    total = 0.0
    for s in np.unique(z):
        ys = y[z == s]
        p = np.bincount(ys) / len(ys)
        p = p[p > 0]
        total += len(ys) / len(y) * float(np.sum(p * np.log(p)))
    return total


def task_hardness_reference(y: np.ndarray, z: np.ndarray | None = None) -> float:
    """H(Y) without source predictions, else H(Y | Z) = −NCE."""
    return -nce_reference(np.zeros_like(y) if z is None else z, y)


def h_score_reference(f: np.ndarray, y: np.ndarray, shrinkage: bool = False) -> float:
    """H-score (Bao et al. 2019): tr(cov(f)⁺ cov(E[f | y])); with ``shrinkage`` cov(f) is
    sklearn's Ledoit–Wolf estimate and cov(E[f | y]) is scaled by 1 − δ (Ibrahim et al.)."""
    f = np.asarray(f, dtype=np.float64)
    g = np.zeros_like(f)
    for c in range(int(y.max()) + 1):
        g[y == c] = f[y == c].mean(axis=0)
    covg = np.cov(g, rowvar=False, bias=True)
    if not shrinkage:
        return float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False, bias=True)) @ covg))
    cov, delta = ledoit_wolf(f)
    return float(np.trace(np.linalg.pinv(cov) @ ((1 - delta) * covg)))


def logme_columns_reference(f: np.ndarray, targets: np.ndarray) -> list[float]:
    """LogME (You et al. 2021) of every column of ``targets`` (N × K), in nats per sample.

    MacKay's fixed point from α = β = 1 with a dense D × D solve for m at every iteration,
    then the log evidence. Its supremum can also lie on the boundary, which the iteration
    only creeps towards (it stops before the dense matrix degenerates), so the boundary limits
    are compared too: α → ∞ (w = 0, y ~ N(0, I/β))
    and, when FFᵀ is invertible, β → ∞ (y ~ N(0, FFᵀ/α), maximised at α = n / yᵀ(FFᵀ)⁻¹y).
    """
    f = np.asarray(f, dtype=np.float64)
    n, d = f.shape
    ftf, kernel = f.T @ f, (f @ f.T if n <= d else None)
    # the nonzero eigenvalues of FᵀF, from the smaller of FᵀF and FFᵀ (the rest are 0)
    sigma = np.clip(np.linalg.eigvalsh(kernel if n < d else ftf), 0, None)
    exact_fit = kernel is not None and np.linalg.matrix_rank(kernel) == n
    out = []
    for yc in np.asarray(targets, dtype=np.float64).T:
        fty = f.T @ yc
        alpha, beta = 1.0, 1.0
        for _ in range(1000):
            m = beta * np.linalg.solve(alpha * np.eye(d) + beta * ftf, fty)
            gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
            res = float(np.sum((f @ m - yc) ** 2))
            with np.errstate(divide="ignore", invalid="ignore"):
                new_alpha, new_beta = gamma / np.float64(m @ m), (n - gamma) / np.float64(res)
            if not (0 < new_alpha < np.inf and 0 < new_beta < np.inf):  # off to a boundary
                break
            if new_alpha < 1e-12 * new_beta * sigma.max():  # towards β → ∞: stop before
                break  # αI + βFᵀF turns singular in floating point (the limit is compared)
            done = abs(new_alpha / new_beta - alpha / beta) <= 1e-10 * alpha / beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        m = beta * np.linalg.solve(alpha * np.eye(d) + beta * ftf, fty)
        res, mm = float(np.sum((f @ m - yc) ** 2)), float(m @ m)
        log_det_a = (d - len(sigma)) * np.log(alpha) + np.sum(np.log(alpha + beta * sigma))
        evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                    - beta / 2 * res - alpha / 2 * mm - 0.5 * log_det_a)
        limits = [n / 2 * (np.log(n / float(yc @ yc)) - 1 - np.log(2 * np.pi))]  # α → ∞
        if exact_fit:  # β → ∞
            alpha = n / float(yc @ np.linalg.solve(kernel, yc))
            limits.append(n / 2 * (np.log(alpha) - 1 - np.log(2 * np.pi))
                          - 0.5 * np.linalg.slogdet(kernel)[1])
        out.append(max(evidence, *limits) / n)
    return out


def logme_reference(f: np.ndarray, target_labels: np.ndarray | None = None,
                    target_values: np.ndarray | None = None) -> float:
    """LogME: the mean over one-hot class columns of ``target_labels``, or over the columns of
    ``target_values``."""
    if target_values is None:
        target_values = np.eye(int(target_labels.max()) + 1)[target_labels]
    return float(np.mean(logme_columns_reference(f, target_values)))


def transrate_reference(f: np.ndarray, y: np.ndarray, distortion: float = 1e-4) -> float:
    """TransRate (Huang et al. 2022): R(Z) − Σ_c (n_c/n) R(Z_c) on centred features,
    R(Z) = ½ log det(I_d + d/(n·ε²) ZᵀZ) with ``distortion`` = ε²."""
    z = np.asarray(f, dtype=np.float64)
    z = z - z.mean(axis=0)
    d = z.shape[1]

    def rate(x: np.ndarray) -> float:  # det(I + k XᵀX) = det(I + k XXᵀ): the smaller side
        gram = x @ x.T if len(x) < d else x.T @ x
        return 0.5 * np.linalg.slogdet(np.eye(len(gram)) + d / (len(x) * distortion) * gram)[1]

    return rate(z) - sum((y == c).mean() * rate(z[y == c]) for c in range(int(y.max()) + 1))
