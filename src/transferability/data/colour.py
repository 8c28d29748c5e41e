"""The bundled colour task: 32×32 RGB printed digits and animal silhouettes, SVHN-like.

Each image draws a shape of its class (a digit glyph from matplotlib's TrueType fonts, or an
``animal-mnist`` silhouette), scales, rotates and places it, paints it in a random colour
over a background cut from the photographs that scikit-learn ships
(``load_sample_images``), adds a partly visible distractor shape of another class at the
border (as SVHN's neighbouring digits), then blurs and adds noise. Everything is batched in
torch (one ``grid_sample`` for shapes, one gather for backgrounds): 10,000 images take about
a second once the photographs are decoded. The same ``seed`` gives the same images.

Two families of 10 classes, ``colour-digits`` and ``colour-animals``; their mixtures
(``{mixture: [colour-digits, colour-animals], k: 5}``) play the role the grayscale ones do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_int, check_seed
from .sources import ANIMAL_CLASSES, DIGIT_NAMES, MAX_PER_CLASS, Arrays, _cached, _fonts

__all__ = ["colour_digits", "colour_animals", "SIZE"]

SIZE = 32
_GLYPH = 48  # shapes are drawn at 48×48, then warped down to 32×32


@lru_cache(maxsize=1)
def _digit_glyphs() -> torch.Tensor:
    """fonts × 10 digit masks, 48×48 in [0, 1] (Pillow, one glyph each)."""
    from PIL import Image, ImageDraw

    out = []
    for sizes in _fonts():
        font = sizes[-1].font_variant(size=40)
        for d in range(10):
            im = Image.new("L", (_GLYPH, _GLYPH))
            ImageDraw.Draw(im).text((_GLYPH / 2, _GLYPH / 2), str(d), font=font, fill=255,
                                    anchor="mm")
            out.append(np.asarray(im))
    masks = torch.from_numpy(np.stack(out)).float().div_(255)
    return masks.view(len(_fonts()), 10, _GLYPH, _GLYPH).transpose(0, 1).contiguous()


@lru_cache(maxsize=1)
def _animal_glyphs(per_class: int = 200) -> torch.Tensor:
    """10 × ``per_class`` animal-mnist silhouettes, each cut to its bounding box and scaled
    (aspect kept) so that its longer side spans 44 of the 48 pixels."""
    from .sources import load_animals

    x, y, _ = load_animals()
    idx = np.stack([np.flatnonzero(y == c)[:per_class] for c in range(10)])
    masks = x[torch.from_numpy(idx).flatten()]
    inside = masks[:, 0] > 0.25
    coords = torch.linspace(-1, 1, masks.shape[-1])  # align_corners=True pixel centres
    box = []
    for axis in (1, 2):  # columns (x), then rows (y)
        hit = inside.any(axis)
        lo = torch.where(hit, coords, torch.tensor(2.0)).amin(1)
        hi = torch.where(hit, coords, torch.tensor(-2.0)).amax(1)
        box.append((lo, hi))
    (x0, x1), (y0, y1) = box
    half = torch.maximum(x1 - x0, y1 - y0).clamp_min(0.1) / 2 * (_GLYPH / 44)
    theta = torch.zeros(len(masks), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = half
    theta[:, 0, 2], theta[:, 1, 2] = (x0 + x1) / 2, (y0 + y1) / 2
    grid = F.affine_grid(theta, [len(masks), 1, _GLYPH, _GLYPH], align_corners=True)
    out = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.clamp_(0, 1).view(10, per_class, _GLYPH, _GLYPH)


@lru_cache(maxsize=1)
def _backgrounds() -> list[torch.Tensor]:
    """The two scikit-learn photographs at three scales (÷2, ÷3, ÷4), each also mirrored:
    12 pictures 3×H×W in [0, 1] (read with Pillow from scikit-learn's folder, without
    importing it)."""
    from importlib.util import find_spec
    from pathlib import Path

    from PIL import Image

    folder = Path(find_spec("sklearn").origin).parent / "datasets" / "images"
    photos = []
    for name in ("china.jpg", "flower.jpg"):
        with Image.open(folder / name) as im:
            photos.append(np.asarray(im.convert("RGB")))
    photos = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float().div_(255)
    pictures = [p for k in (2, 3, 4) for p in F.avg_pool2d(photos, k)]
    return pictures + [p.flip(-1).contiguous() for p in pictures]


@dataclass(frozen=True)
class _Style:
    """How hard a family is drawn: the distractor's largest opacity, the strongest blur
    (an index of ``_BLUR_SIZES``), the largest noise standard deviation, the background's
    contrast (1: the photograph's; less: faded towards its mean colour) and the largest
    rotation (degrees)."""

    distractor: float = 0.8
    blur: int = 3
    noise: float = 0.06
    background: float = 1.0
    tilt: float = 12.0


_BLUR_SIZES = (SIZE, 26, 22, 19)  # blur: down to this size and back up (bilinear)
_CHUNK = 1000  # images drawn at a time: each step's tensors stay small enough for the cache
_BASE = torch.stack(torch.meshgrid(*[(torch.arange(SIZE) * 2 + 1) / SIZE - 1] * 2,
                                   indexing="xy")).view(2, -1)  # output pixel centres (x, y)


def _background_crops(which: np.ndarray, corner: np.ndarray, order: np.ndarray) -> torch.Tensor:
    """32×32 crops of the pictures ``which`` (indices into :func:`_backgrounds`) at
    ``corner`` (fractions of the free room), channels in ``order`` (N×3): one gather each."""
    pictures = _backgrounds()
    out = torch.empty(len(which), 3, SIZE, SIZE)
    for k in np.unique(which):
        idx = np.flatnonzero(which == k)
        pic = pictures[k]
        room = np.array(pic.shape[-2:]) - SIZE + 1
        top, left = (corner[idx] * room).astype(np.int64).T
        windows = pic.unfold(1, SIZE, 1).unfold(2, SIZE, 1)  # a view: 3 × h' × w' × 32 × 32
        out[torch.from_numpy(idx)] = windows[torch.from_numpy(order[idx]),
                                             torch.from_numpy(top)[:, None],
                                             torch.from_numpy(left)[:, None]]
    return out


def _warp(masks: torch.Tensor, scale: np.ndarray, angle: np.ndarray,
          shift: np.ndarray) -> torch.Tensor:
    """Masks N×1×48×48 scaled (fraction of the image), rotated (degrees) and shifted
    (fractions of the half-width), sampled to N×1×32×32 in one ``grid_sample`` (the
    sampling grid is one matrix product, without ``affine_grid``'s per-image base grid)."""
    a = np.deg2rad(angle)
    inv = 1.0 / scale
    rot = np.empty((len(scale), 2, 2))
    rot[:, 0, 0], rot[:, 0, 1] = inv * np.cos(a), -inv * np.sin(a)
    rot[:, 1, 0], rot[:, 1, 1] = inv * np.sin(a), inv * np.cos(a)
    offset = -(rot @ shift[:, :, None])
    grid = torch.from_numpy(rot).float() @ _BASE + torch.from_numpy(offset).float()
    grid = grid.transpose(1, 2).reshape(len(scale), SIZE, SIZE, 2)
    return F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(x: torch.Tensor, level: np.ndarray) -> torch.Tensor:
    """Soften each image, in place, by resampling it through ``_BLUR_SIZES[level]`` pixels."""
    for j, size in enumerate(_BLUR_SIZES[1:], 1):
        idx = torch.from_numpy(np.flatnonzero(level == j))
        if len(idx):
            small = F.interpolate(x[idx], size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False)
            x[idx] = F.interpolate(small, size=(SIZE, SIZE), mode="bilinear",
                                   align_corners=False)
    return x


def _draw(glyphs: torch.Tensor, p: dict, style: _Style,
          noise: torch.Generator) -> torch.Tensor:
    """The images of one chunk of drawn parameters ``p`` (see :func:`_compose`)."""
    n = len(p["y"])
    masks = glyphs[torch.from_numpy(p["cls"]), torch.from_numpy(p["variant"])]
    warped = _warp(masks.view(2 * n, 1, _GLYPH, _GLYPH), p["scale"].reshape(-1),
                   p["angle"].reshape(-1), p["shift"].reshape(-1, 2)).view(n, 2, 1, SIZE, SIZE)
    x = _background_crops(p["picture"], p["corner"], p["order"])
    if style.background != 1:
        x.lerp_(x.mean((2, 3), keepdim=True).expand_as(x), 1 - style.background)
    colours = torch.from_numpy(p["colour"]).float()
    # contrast: a colour too close to the background's mean under the shape is pushed to
    # the far side of every channel
    cover = warped[:, 0].view(n, SIZE * SIZE, 1)
    mean = (x.view(n, 3, -1) @ cover)[:, :, 0] / cover.sum(1).clamp_min(1e-6)
    dull = (colours[:, 0] - mean).norm(dim=1) < 0.4
    far = 0.75 * (mean < 0.5).float() + 0.25 * colours[:, 0]
    colours[:, 0][dull] = far[dull]
    opacity = torch.from_numpy(p["opacity"]).float()
    for j in (1, 0):  # distractor first, the class's shape on top
        alpha = warped[:, j].mul_(opacity[:, j, None, None, None])
        x.lerp_(colours[:, j, :, None, None].expand_as(x), alpha.expand_as(x))
    _blur(x, p["blur"])
    sigma = torch.from_numpy(p["noise"]).float()[:, None, None, None]
    return x.add_(torch.randn(x.shape, generator=noise).mul_(sigma)).clamp_(0, 1)


def _compose(glyphs: torch.Tensor, n_per_class: int, seed: int, style: _Style) -> Arrays:
    """Images of ``glyphs`` (classes × variants × 48 × 48) over photographs: every random
    choice is drawn first (NumPy, from ``seed``), then the images in chunks of ``_CHUNK``."""
    rng = np.random.default_rng(seed)
    classes, variants = glyphs.shape[:2]
    n = classes * n_per_class
    y = np.tile(np.arange(classes), n_per_class)
    other = (y + rng.integers(1, classes, size=n)) % classes  # a distractor of another class
    side = rng.choice([-1.0, 1.0], size=n)  # distractor left or right, mostly outside
    p = {"y": y, "cls": np.stack([y, other], 1), "variant": rng.integers(variants, size=(n, 2)),
         "scale": rng.uniform(0.7, 1.0, size=(n, 1)) * [1.0, 0.8],
         "angle": rng.uniform(-style.tilt, style.tilt, size=(n, 2)),
         "shift": np.stack([rng.uniform(-0.15, 0.15, size=(n, 2)),
                            np.stack([side * rng.uniform(0.95, 1.2, size=n),
                                      rng.uniform(-0.2, 0.2, size=n)], 1)], 1),
         "picture": rng.integers(len(_backgrounds()), size=n), "corner": rng.random((n, 2)),
         "order": rng.random((n, 3)).argsort(1), "colour": rng.random((n, 2, 3)),
         "opacity": np.stack([rng.uniform(0.85, 1.0, size=n),
                              rng.uniform(0.0, style.distractor, size=n)], 1),
         "blur": rng.integers(style.blur + 1, size=n),
         "noise": rng.uniform(0.0, style.noise, size=n)}
    noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
    x = torch.empty(n, 3, SIZE, SIZE)
    for start in range(0, n, _CHUNK):
        x[start:start + _CHUNK] = _draw(glyphs, {k: v[start:start + _CHUNK] for k, v in p.items()},
                                        style, noise)
    return x, y.astype(np.int64), []


_DIGITS = _Style()
_ANIMALS = _Style(distractor=0.0, blur=0, noise=0.02, background=0.3, tilt=4.0)


def _check(n_per_class, seed) -> tuple[int, int]:
    return check_int(n_per_class, "n_per_class", maximum=MAX_PER_CLASS), check_seed(seed)


def colour_digits(n_per_class: int = 1000, seed: int = 0) -> Arrays:
    """Printed digits 0–9 (10 fonts, varied colour, size, angle and place) over photographs,
    with a distractor digit, blur and noise: 32×32 RGB, class-interleaved."""
    return _colour_digits(*_check(n_per_class, seed))


def colour_animals(n_per_class: int = 1000, seed: int = 0) -> Arrays:
    """Animal silhouettes (``animal-mnist``, 10 classes) drawn as :func:`colour_digits`."""
    return _colour_animals(*_check(n_per_class, seed))


@_cached(maxsize=4)
def _colour_digits(n_per_class: int, seed: int) -> Arrays:
    x, y, _ = _compose(_digit_glyphs(), n_per_class, seed, _DIGITS)
    return x, y, list(DIGIT_NAMES)


@_cached(maxsize=4)
def _colour_animals(n_per_class: int, seed: int) -> Arrays:
    x, y, _ = _compose(_animal_glyphs(), n_per_class, seed + 7919, _ANIMALS)
    return x, y, list(ANIMAL_CLASSES)

