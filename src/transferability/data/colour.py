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
    """10 × ``per_class`` animal-mnist silhouettes, padded to 48×48."""
    from .sources import load_animals

    x, y, _ = load_animals()
    idx = np.stack([np.flatnonzero(y == c)[:per_class] for c in range(10)])
    masks = F.interpolate(x[torch.from_numpy(idx).flatten()], size=(40, 40), mode="bilinear",
                          align_corners=False).clamp(0, 1)
    return F.pad(masks, (4, 4, 4, 4)).view(10, per_class, _GLYPH, _GLYPH)


@lru_cache(maxsize=1)
def _backgrounds() -> list[torch.Tensor]:
    """The two scikit-learn photographs at three scales (÷2, ÷3, ÷4), 3×H×W in [0, 1]
    (read with Pillow from scikit-learn's folder, without importing it)."""
    from importlib.util import find_spec
    from pathlib import Path

    from PIL import Image

    folder = Path(find_spec("sklearn").origin).parent / "datasets" / "images"
    photos = []
    for name in ("china.jpg", "flower.jpg"):
        with Image.open(folder / name) as im:
            photos.append(np.asarray(im.convert("RGB")))
    photos = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float().div_(255)
    return [F.avg_pool2d(photos, k) for k in (2, 3, 4)]


def _background_crops(rng: np.random.Generator, n: int) -> torch.Tensor:
    """``n`` random 32×32 crops of the photographs (random scale, flip, channel order)."""
    levels = _backgrounds()
    which = rng.integers(len(levels) * 2, size=n)  # (scale, photograph)
    out = torch.empty(n, 3, SIZE, SIZE)
    for k in range(len(levels) * 2):
        idx = torch.from_numpy(np.flatnonzero(which == k))
        pic = levels[k // 2][k % 2]
        h, w = pic.shape[-2:]
        windows = pic.unfold(1, SIZE, 1).unfold(2, SIZE, 1)  # a view: 3 × h' × w' × 32 × 32
        top = torch.from_numpy(rng.integers(h - SIZE + 1, size=len(idx)))
        left = torch.from_numpy(rng.integers(w - SIZE + 1, size=len(idx)))
        out[idx] = windows[:, top, left].transpose(0, 1)
    perm = torch.from_numpy(rng.random((n, 3)).argsort(1))  # a colour order per image
    out = out.gather(1, perm[:, :, None, None].expand(-1, -1, SIZE, SIZE))
    flip = torch.from_numpy(rng.random(n) < 0.5)
    out[flip] = out[flip].flip(-1)
    return out


def _warp(masks: torch.Tensor, scale: np.ndarray, angle: np.ndarray,
          shift: np.ndarray) -> torch.Tensor:
    """Masks N×1×48×48 scaled (fraction of the image), rotated (degrees) and shifted
    (fractions of the half-width), sampled to N×1×32×32 in one ``grid_sample``."""
    a = np.deg2rad(angle)
    inv = 1.0 / scale
    theta = np.zeros((len(scale), 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = inv * np.cos(a), -inv * np.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = inv * np.sin(a), inv * np.cos(a)
    theta[:, :, 2] = -(theta[:, :, :2] @ shift[:, :, None])[:, :, 0]
    grid = F.affine_grid(torch.from_numpy(theta).float(), [len(scale), 1, SIZE, SIZE],
                         align_corners=False)
    return F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


_BLUR_SIZES = (SIZE, 26, 22, 19)  # blur: down to this size and back up (bilinear)


def _blur(x: torch.Tensor, level: np.ndarray) -> torch.Tensor:
    """Soften each image by resampling it through ``_BLUR_SIZES[level]`` pixels."""
    out = x.clone()
    for j, size in enumerate(_BLUR_SIZES[1:], 1):
        idx = torch.from_numpy(np.flatnonzero(level == j))
        if len(idx):
            small = F.interpolate(x[idx], size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False)
            out[idx] = F.interpolate(small, size=(SIZE, SIZE), mode="bilinear",
                                     align_corners=False)
    return out


def _compose(glyphs: torch.Tensor, n_per_class: int, seed: int) -> Arrays:
    """Images of ``glyphs`` (classes × variants × 48 × 48) over photographs."""
    rng = np.random.default_rng(seed)
    classes, variants = glyphs.shape[:2]
    n = classes * n_per_class
    y = np.tile(np.arange(classes), n_per_class)
    other = (y + rng.integers(1, classes, size=n)) % classes  # a distractor of another class
    pick = torch.from_numpy(rng.integers(variants, size=(2, n)))
    masks = torch.stack([glyphs[torch.from_numpy(y), pick[0]],
                         glyphs[torch.from_numpy(other), pick[1]]], 1).view(2 * n, 1, _GLYPH,
                                                                              _GLYPH)
    scale = rng.uniform(0.7, 1.0, size=(n, 1)) * [1.0, 0.8]
    side = rng.choice([-1.0, 1.0], size=n)  # distractor left or right, mostly outside
    shift = np.stack([rng.uniform(-0.15, 0.15, size=(n, 2)),
                      np.stack([side * rng.uniform(0.95, 1.2, size=n),
                                rng.uniform(-0.2, 0.2, size=n)], 1)], 1)
    warped = _warp(masks, scale.reshape(-1), rng.uniform(-12, 12, size=2 * n),
                   shift.reshape(-1, 2)).view(n, 2, 1, SIZE, SIZE)
    bg = _background_crops(rng, n)
    colours = torch.from_numpy(rng.random((n, 2, 3))).float()
    # contrast: a colour too close to the background's mean under the shape is pushed to
    # the far side of every channel
    cover = warped[:, 0]
    mean = (bg * cover).sum((2, 3)) / cover.sum((2, 3)).clamp_min(1e-6)
    dull = (colours - mean[:, None]).norm(dim=2) < 0.4
    far = 0.75 * (mean[:, None] < 0.5).float() + 0.25 * colours
    colours[dull] = far[dull]
    opacity = torch.from_numpy(np.stack([rng.uniform(0.85, 1.0, size=n),
                                         rng.uniform(0.0, 0.8, size=n)], 1)).float()
    x = bg
    for j in (1, 0):  # distractor first, the class's shape on top
        a = opacity[:, j, None, None, None] * warped[:, j]
        x = x * (1 - a) + colours[:, j, :, None, None] * a
    x = _blur(x, rng.integers(len(_BLUR_SIZES), size=n))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(int(rng.integers(2**62))))
    x += noise.mul_(torch.from_numpy(rng.uniform(0.0, 0.06, size=(n, 1, 1, 1))).float())
    return x.clamp_(0, 1), y.astype(np.int64), []


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
    x, y, _ = _compose(_digit_glyphs(), n_per_class, seed)
    return x, y, list(DIGIT_NAMES)


@_cached(maxsize=4)
def _colour_animals(n_per_class: int, seed: int) -> Arrays:
    x, y, _ = _compose(_animal_glyphs(), n_per_class, seed + 7919)
    return x, y, list(ANIMAL_CLASSES)

