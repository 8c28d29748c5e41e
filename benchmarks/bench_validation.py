"""The cost of validating before work.

1. ``check_images`` (run by every ``ImageDataset``, so by every split and subset) against
   a baseline that scans every pixel for NaN/inf: one reduction first, the full scan only
   when the sum is not finite. Goal: at least 3× faster on 10,000 MNIST-sized images.
2. Checking the demo zoo's data before any train job (``zoo.check_entry_data``: both
   splits built, arch fit on the ``meta`` device) against building the train and test
   splits the train jobs build anyway. Goal: at most 1.5× that (the checks add little).
"""

from __future__ import annotations

import time

import torch

from transferability._validation import check_images
from transferability.data import dataset_from_spec
from transferability.zoo import check_entry_data, load_spec

REPEATS = 5


def _full_scan(x: torch.Tensor) -> torch.Tensor:
    """The baseline: every pixel tested for NaN/inf, then the range."""
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError("x: contains NaN or inf")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("x: values must lie in [0, 1]")
    return x


def _best(fn, *args) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def _splits(entries) -> None:
    for e in entries:
        for split in ("train", "test"):
            dataset_from_spec(e.data, split, seed=e.train.get("seed", 0))


def _checks(entries) -> None:
    for e in entries:
        check_entry_data(e)


def main() -> None:
    x = torch.rand(10_000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    full, one = _best(_full_scan, x), _best(check_images, x)
    print(f"check_images, 10,000 images 1×28×28, best of {REPEATS}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"  full NaN scan (baseline) {full * 1e3:7.1f} ms")
    print(f"  one reduction first      {one * 1e3:7.1f} ms   speed-up {full / one:.1f}× "
          "(goal ≥ 3×)")

    entries = load_spec("demo")
    _splits(entries)  # loads (and caches) every bundled dataset once
    splits, checks = _best(_splits, entries), _best(_checks, entries)
    print(f"demo zoo, {len(entries)} entries, data loaders warm, best of {REPEATS}")
    print(f"  train+test splits (what the jobs build) {splits:6.2f} s")
    print(f"  every check before the jobs             {checks:6.2f} s   ratio "
          f"{checks / splits:.2f} (goal ≤ 1.5)")


if __name__ == "__main__":
    main()
