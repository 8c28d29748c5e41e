"""Small helpers the estimators share: input checks, per-class sums, growing count tables,
power-of-two rescaling and a guarded eigendecomposition."""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse

from .._validation import as_float64, as_labels, check_more_samples_than_classes


def as_features(a, name: str = "features") -> np.ndarray:
    """A finite float64 N × D array with N, D >= 1 (features, softmax rows, regression targets)."""
    arr = as_float64(a, name, ndim=2)
    if 0 in arr.shape:
        raise ValueError(f"{name}: is empty (shape {arr.shape}); need at least one row and one "
                         "column")
    return arr


def target_classes(target_labels, name: str = "target_labels") -> tuple[np.ndarray, int]:
    """Check labels for a whole task (0..C-1, all present, C >= 2, n > C); return (labels, C)."""
    labels = as_labels(target_labels, name, contiguous=False, min_classes=1)
    if labels.max() >= len(labels):  # a class is surely missing; say so without listing them all
        raise ValueError(f"{name}: labels must be 0..C-1 with every class present; found label "
                         f"{int(labels.max())} among {len(labels)} samples (relabel to "
                         "consecutive ids)")
    labels = as_labels(labels, name)
    num_classes = int(labels.max()) + 1
    check_more_samples_than_classes(len(labels), num_classes, name)
    return labels, num_classes


def batch_labels(target_labels, name: str = "target_labels") -> np.ndarray:
    """Check the labels of one streaming batch: integers >= 0, any subset of classes."""
    return as_labels(target_labels, name, contiguous=False, min_classes=1)


def check_class_counts(counts: np.ndarray, name: str = "target_labels") -> int:
    """At ``compute()``: the classes seen over all batches must form a task; return C."""
    if counts.size == 0:
        raise ValueError(f"{name}: no data; call update() first")
    as_labels(np.flatnonzero(counts), name)  # every class 0..C-1 present, at least two
    check_more_samples_than_classes(int(counts.sum()), counts.size, name)
    return counts.size


def one_hot(labels: np.ndarray, num_classes: int,
            weights: np.ndarray | None = None) -> sparse.csr_array:
    """Sparse C × N indicator matrix of ``labels`` (entries ``weights`` instead of 1 if given)."""
    n = len(labels)
    data = np.ones(n) if weights is None else weights
    return sparse.csr_array((data, (labels, np.arange(n))), shape=(num_classes, n))


def class_sums(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Row sums of ``values`` (N × K) within each class: a C × K array, in O(N·K)."""
    return np.asarray(one_hot(labels, num_classes) @ values)


def grow(table: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``table`` zero-padded to at least ``shape`` (streaming tables widen as classes appear)."""
    target = tuple(max(a, b) for a, b in zip(table.shape, shape, strict=True))
    if target == table.shape:
        return table
    out = np.zeros(target, dtype=table.dtype)
    out[tuple(slice(0, s) for s in table.shape)] = table
    return out


def pow2_scale(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """The power of two 2^e with max|a| in [2^e, 2^(e+1)) (along ``axis``); 2^-1074 where a is 0.

    Dividing by it is exact and brings any finite magnitude near 1, so sums of squares and
    fourth powers neither overflow nor underflow.
    """
    top = np.maximum(np.max(a, axis=axis, initial=0.0), -np.min(a, axis=axis, initial=0.0))
    return np.ldexp(1.0, np.where(top > 0, np.frexp(top)[1] - 1, -1074))


def nonzero_eigh(sym: np.ndarray, name: str = "features", *, vectors: bool = True,
                 top: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Eigenpairs of a PSD matrix with eigenvalue above dim·eps·λ_max (the rest count as 0),
    ascending; of the ``top`` largest only, when given (reads the lower triangle)."""
    try:
        if top is not None:
            out = linalg.eigh(sym, subset_by_index=[len(sym) - top, len(sym) - 1],
                              eigvals_only=not vectors)
            lam, vecs = out if vectors else (out, None)
        else:
            lam, vecs = np.linalg.eigh(sym) if vectors else (np.linalg.eigvalsh(sym), None)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"{name}: the eigendecomposition failed ({exc}); the features are "
                         "numerically degenerate") from exc
    keep = lam > max(lam[-1], 0.0) * len(sym) * np.finfo(float).eps
    return lam[keep], (None if vecs is None else vecs[:, keep])


def finite(value, name: str) -> float:
    """``value`` as a float, or a ValueError naming ``name`` when it is NaN or infinite."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: the score came out {value}, not a finite number "
                         "(numerically degenerate input)")
    return value


def _lower_gram(z: np.ndarray) -> np.ndarray:
    """The lower triangle of zᵀz (D × D), which is all that the eigh calls below read: one
    symmetric rank-k update, half a matrix product."""
    return linalg.blas.dsyrk(1.0, z.T, lower=1)  # zᵀ is Fortran-ordered: no copy


def principal_components(features: np.ndarray, dims: int | None = None, *,
                         variance: float | None = None, name: str = "dims") -> np.ndarray:
    """Scores of centred ``features`` (N × D) on their top principal axes, N × k.

    k is ``dims``; with ``variance``, the fewest axes keeping that fraction of the total
    variance, at most ``dims`` when given (a cap, not a request). The
    eigendecomposition is of the smaller of ZᵀZ and ZZᵀ, after an exact power-of-two rescaling
    (the scores keep the input's scale). Each axis's sign makes its largest-magnitude
    loading positive (scikit-learn's convention), so the scores are deterministic. Asking
    for more axes than the rank of the centred features is a ValueError naming ``name``.
    """
    scale = pow2_scale(features)
    z = features / scale
    z -= z.mean(axis=0)
    gram_side = len(z) < z.shape[1]
    gram = z @ z.T if gram_side else _lower_gram(z)
    top = dims if dims is not None and 0 < dims < len(gram) // 4 else None  # few: far faster
    lam, vecs = nonzero_eigh(gram, "features", top=top)
    total = np.trace(gram) if top else lam.sum()
    lam, vecs = lam[::-1], vecs[:, ::-1]
    if variance is not None:
        keep = int(np.searchsorted(np.cumsum(lam) / total, variance * (1 - 1e-12))) + 1
        dims = keep if dims is None else min(dims, keep)
    if dims is None or dims > len(lam):
        raise ValueError(f"{name}: {dims} principal components requested but the centred "
                         f"features have rank {len(lam)}")
    lam, vecs = lam[:dims], vecs[:, :dims]
    loadings = z.T @ vecs if gram_side else vecs
    rows = np.abs(loadings).argmax(axis=0)
    signs = np.sign(loadings[rows, np.arange(dims)])  # largest loading > 0, as in sklearn
    scores = vecs * np.sqrt(lam) if gram_side else z @ vecs
    return scores * (signs * scale)


def class_means(features: np.ndarray, labels: np.ndarray,
                num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """C × D class means and the class counts."""
    counts = np.bincount(labels, minlength=num_classes)
    return class_sums(features, labels, num_classes) / counts[:, None], counts


def check_class_sizes(counts: np.ndarray, minimum: int, name: str = "target_labels") -> None:
    """Every class must have at least ``minimum`` samples (per-class statistics need them)."""
    if counts.min() < minimum:
        raise ValueError(f"{name}: class {int(counts.argmin())} has {int(counts.min())} "
                         f"sample(s); this estimator needs at least {minimum} per class")
