"""The newer estimators as their authors' released code computes them, step by step.

Written from reading the authors' repositories (TencentARC/SFDA ``metrics.py`` for SFDA,
N-LEEP and PARC; mgholamikn/ETran ``metrics.py``/``tw.py`` for ETran; google-research
``stable_transfer/transferability/gbc.py`` for GBC), with loops over classes, dense
generalised eigenproblems, N × N correlation matrices and ``scipy.stats.spearmanr``, as they
do. Where the authors' code has a quirk the library does not copy, a keyword reproduces it
(``power_iterations``, ``log``, ``randomized``, ``absolute_floor``) and the default gives the
number the library's documented form computes. ``tests/test_estimator_authors.py`` checks
the library against these; ``bench_estimators`` times them.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, stats
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture

__all__ = ["sfda_authors", "nleep_authors", "parc_authors", "gbc_authors", "etran_authors",
           "ncti_authors", "ncti_authors_across"]


def _shrunk(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    d = len(cov)
    return (1 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _fisher_probs(x, y, shrinkage, power_iterations):
    """The authors' SFDA class: within scatter, λ, S_b = S_t(λ) − S_w(λ), generalised eigh,
    coef = means V Vᵀ, LDA intercept, softmax."""
    classes = int(y.max()) + 1
    priors = np.bincount(y) / len(y)
    means = np.stack([x[y == c].mean(axis=0) for c in range(classes)])
    within = sum(priors[c] * np.cov(x[y == c].T, bias=True) for c in range(classes))
    if shrinkage is None:
        if power_iterations:  # the authors' three power iterations from the row sums
            v = within.sum(axis=1)
            for _ in range(power_iterations):
                u = within @ v
                u /= np.linalg.norm(u)
                v = within @ u
                v /= np.linalg.norm(v)
            sigma = v @ within @ u
        else:
            sigma = np.linalg.eigvalsh(within)[-1]
        shrinkage = max(np.exp(-5 * sigma), 1e-10)
    sw = _shrunk(within, shrinkage)
    sb = _shrunk(np.cov(x.T, bias=True), shrinkage) - sw
    evals, evecs = linalg.eigh(sb, sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return _softmax(x @ coef.T + intercept), shrinkage


def sfda_authors(f, y, power_iterations: int = 0) -> float:
    """SFDA_Score: Fisher probabilities, softmax again, ConfMix towards the other classes'
    mean, refit with the same λ, mean true-class probability. ``power_iterations=3`` takes
    λ from the authors' power iteration instead of the exact σ_max."""
    x = np.array(f, dtype=np.float64)
    n, classes = len(y), int(y.max()) + 1
    prob, shrinkage = _fisher_probs(x, y, None, power_iterations)
    prob = _softmax(prob)
    means = np.stack([x[y == c].mean(axis=0) for c in range(classes)])
    for c in range(classes):
        idx = np.where(y == c)[0]
        others = (means.sum(axis=0) - means[c]) / (classes - 1)
        q = prob[idx, c][:, None]
        x[idx] = q * x[idx] + (1 - q) * others
    prob = _fisher_probs(x, y, shrinkage, power_iterations)[0]
    return float(prob[np.arange(n), y].mean())


def nleep_authors(f, y, variance: float = 0.8, seed: int = 0, log: bool = True,
                  standardise: bool = True, cap: bool = True) -> float:
    """NLEEP: PCA keeping ``variance``, a GMM of 5 × C components, the expected empirical
    prediction. The authors' code averages it without the log (``log=False``), on PCA scores
    as they are (``standardise=False``), with an unseeded GMM and no cap on the components
    (``cap=False``; the library: at most N / (2(k + 1)) for k PCA dimensions)."""
    n, classes = len(y), int(y.max()) + 1
    z = PCA(n_components=variance, svd_solver="full").fit_transform(f)
    if standardise:
        z = z / np.sqrt(np.mean(z * z))
    components = 5 * classes
    if cap:
        components = max(1, min(components, n // (2 * (z.shape[1] + 1))))
    prob = GaussianMixture(components, random_state=seed).fit(z).predict_proba(z)
    joint = np.stack([prob[y == c].sum(axis=0) for c in range(classes)]) / n
    eep = (prob @ (joint / joint.sum(axis=0)).T)[np.arange(n), y]
    return float(np.mean(np.log(eep)) if log else np.mean(eep))


def parc_authors(f, y, dims: int = 32, randomized: bool = False,
                 rounding: bool = False) -> float:
    """PARC_Score: PCA to ``dims`` (the authors: randomised, one power iteration, seed
    1919), standardise, 1 − corrcoef of samples and of one-hot labels, Spearman of the upper
    triangles, × 100. ``np.corrcoef`` of one-hot rows gives same-class dissimilarities of 0
    or 1.1e-16 by rounding, which Spearman ranks as different values; the label matrix is
    rounded to its two exact values unless ``rounding=True`` (the authors' numbers)."""
    solver = {"svd_solver": "randomized", "random_state": 1919, "iterated_power": 1} \
        if randomized else {"svd_solver": "full"}
    z = PCA(n_components=min(dims, len(f)), **solver).fit_transform(f)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    rdm_f = 1 - np.corrcoef(z)
    rdm_y = 1 - np.corrcoef(np.eye(int(y.max()) + 1)[y])
    if not rounding:
        rdm_y = np.round(rdm_y, 12)
    upper = np.triu_indices(len(f), 1)
    return float(stats.spearmanr(rdm_f[upper], rdm_y[upper])[0] * 100)


def gbc_authors(f, y, dims: int = 64, gaussian: str = "spherical",
                absolute_floor: float = 0.0) -> float:
    """get_gbc_score on PCA features: per-class mean and biased variance (floored at
    ``absolute_floor``; the authors use 1e-4), the Bhattacharyya distance of every ordered
    pair of classes, −Σ exp(−D_B)."""
    z = PCA(n_components=dims, svd_solver="full").fit_transform(f)
    classes = int(y.max()) + 1
    stats_ = []
    for c in range(classes):
        var = np.maximum(z[y == c].var(axis=0), absolute_floor)
        stats_.append((z[y == c].mean(axis=0), var.mean() if gaussian == "spherical" else var))
    total = 0.0
    for i in range(classes):
        for j in range(classes):
            if i != j:
                (m1, v1), (m2, v2) = stats_[i], stats_[j]
                v1, v2 = np.broadcast_to(v1, m1.shape), np.broadcast_to(v2, m2.shape)
                avg = (v1 + v2) / 2
                dist = (np.sum((m1 - m2) ** 2 / avg) / 8
                        + 0.5 * (np.sum(np.log(avg)) - 0.5 * np.sum(np.log(v1))
                                 - 0.5 * np.sum(np.log(v2))))
                total += np.exp(-dist)
    return float(-total)


def etran_authors(f, y) -> tuple[float, float]:
    """(Energy_Score(f, 0.5, 'bot'), LDA_Score(f, y)) as the authors' code computes them:
    the mean log-sum-exp of the lowest 5·N//1000 samples, and the mean true-class
    probability of their LDA, whose eigh of inv(S_w(λ)) S_b returns orthonormal V."""
    x = np.asarray(f, dtype=np.float64)
    n, classes = len(y), int(y.max()) + 1
    energy = logsumexp(x, axis=1)
    energy = energy[np.argsort(energy)[:5 * n // 1000]].mean()
    priors = np.bincount(y) / n
    means = np.stack([x[y == c].mean(axis=0) for c in range(classes)])
    within = sum(priors[c] * np.cov(x[y == c].T, bias=True) for c in range(classes))
    sw = _shrunk(within, 0.5)  # any λ: the eigenvectors are orthonormal whatever it is
    sb = _shrunk(np.cov(x.T, bias=True), 0.5) - sw
    _, evecs = np.linalg.eigh(np.linalg.inv(sw) @ sb)
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    prob = _softmax(x @ coef.T + intercept)
    return float(energy), float(prob[np.arange(n), y].mean())


def ncti_authors(f, y, components: int = 64) -> tuple[float, float, float]:
    """NCTI_Score as the authors' code (BUserName/NCTI ``metrics.py``) computes it: sklearn
    PCA to 64 components, λ = max(exp(−sum of the 32 largest variances), 1e-10), sklearn's
    LDA ('eigen' with shrinkage λ, or 'svd' when λ hits the 1e-10 floor), then (the nuclear
    norm of the centred LDA projection, the mean true-class probability, log of the sum
    over classes of the nuclear norms of that class's probability rows)."""
    x = PCA(n_components=components).fit(f)
    shrinkage = max(np.exp(-x.explained_variance_[:32].sum()), 1e-10)
    z = x.transform(f)
    lda = (LinearDiscriminantAnalysis(solver="svd") if shrinkage == 1e-10 else
           LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(shrinkage)))
    low = lda.fit_transform(z, y)
    low = low - low.mean(axis=0, keepdims=True)
    seli = np.linalg.norm(low, ord="nuc")
    prob = lda.predict_proba(z)
    ncc = prob[np.arange(len(y)), y].sum() / len(y)
    vc = sum(np.linalg.norm(prob[y == c], ord="nuc") for c in range(int(y.max()) + 1))
    return float(seli), float(ncc), float(np.log(vc))


def ncti_authors_across(terms) -> np.ndarray:
    """The authors' evaluate script: min–max each term over the models, seli + ncc − vc."""
    t = np.asarray(terms, dtype=np.float64)
    lo, span = t.min(axis=0), t.max(axis=0) - t.min(axis=0)
    return (t[:, 1] - lo[1]) / span[1] + (t[:, 0] - lo[0]) / span[0] \
        - (t[:, 2] - lo[2]) / span[2]
