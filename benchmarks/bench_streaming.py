"""Host memory while extracting features from an image folder, before and after.

A folder of 224-px PNG images is read by :class:`~transferability.data.user.ImageFolder`
with ``WORKERS`` reader processes, and ``extract`` computes the features of every image.
Each variant runs in a fresh process; a thread samples the proportional set size (PSS) of
that process and its readers (a page shared by k processes counts 1/k in each, so pages
the readers share with it count once) and the peak is reported:

* **before**: the reader of the previous release, float32 items (the batches cross the
  processes and wait in host memory as float32), two batches ahead per reader whatever
  their size;
* **library**: ``uint8`` items converted per batch on the device, and at most 1 GiB of
  batches read ahead (``data.stream``'s ``ahead_bytes``).

On a GPU the model is a resnet50 at bf16 (the issue's setting: the goal is < 3 GB for
50,000 images); on a CPU a small convolutional network, so the readers set the pace.
``BENCH_STREAM_IMAGES`` (default 2,000) and ``BENCH_STREAM_WORKERS`` (default 8 on a GPU,
2 on a CPU) set the size. ``python -m benchmarks streaming``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferability.data.user import ImageFolder

SIZE, BATCH, CLASSES = 224, 128, 10
VARIANTS = ("before", "library")


def _write_images(args) -> None:
    from PIL import Image

    root, start, stop = args
    rng = np.random.default_rng(start)
    ramp = np.linspace(0, 255, SIZE, dtype=np.float32)
    for i in range(start, stop):
        a, b = rng.uniform(0.2, 1.0, 2)
        img = np.stack([np.add.outer(ramp * a, ramp * b) / 2,
                        np.add.outer(ramp * b, ramp * a) / 2,
                        np.full((SIZE, SIZE), rng.uniform(0, 255))], axis=-1)
        Image.fromarray(img.astype(np.uint8)).save(root / f"c{i % CLASSES}" / f"{i:06d}.png",
                                                   compress_level=1)


def write_folder(root: Path, n: int) -> float:
    """``n`` PNG images of SIZE px in CLASSES class folders under ``root``; seconds taken."""
    for c in range(CLASSES):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    step = -(-n // 32)
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write_images, [(root, i, min(i + step, n)) for i in range(0, n, step)]))
    return time.perf_counter() - start


def tree_pss() -> int:
    """Resident memory of this process and its descendants, in bytes: the sum of their
    proportional set sizes (Linux)."""
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith("Pss:"))
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total


class FloatItems(ImageFolder):
    """The previous reader: float32 items in [0, 1]."""

    def __getitem__(self, i: int):
        x, y = super().__getitem__(i)
        return x.float().div_(255), y


def _model(device: torch.device) -> tuple[nn.Module, str, str]:
    """The model, its name and the precision of the run."""
    from transferability.devices import place

    if device.type == "cuda":
        from benchmarks.bench_gpu import resnet50

        model, name = resnet50()
        return place(model.eval(), device, name), name, "bf16"
    torch.manual_seed(0)
    small = nn.Sequential(nn.Conv2d(3, 16, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                          nn.Flatten(), nn.Linear(256, CLASSES))
    return small.eval(), "a small cnn", "fp32"


def measure(variant: str, root: str, workers: int) -> dict:
    """One variant's extraction in this process: peak PSS of the tree, throughput."""
    import transferability.data.loader as loader
    from transferability.features import extract

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1 if device.type == "cpu" else torch.get_num_threads())
    model, name, precision = _model(device)
    if variant == "before":
        data = FloatItems(root)
        loader._AHEAD_BYTES = 1 << 62  # no bound: two batches per reader
    else:
        data = ImageFolder(root)
    extract(model, torch.zeros(2, 3, SIZE, SIZE, device=device))  # warm-up outside the peak
    before = tree_pss()
    peak, stop = [before], threading.Event()

    def watch():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], tree_pss())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    out = extract(model, data, batch_size=BATCH, workers=workers, precision=precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    return {"variant": variant, "model": name, "device": str(device), "n": len(out.labels),
            "before": before, "peak": peak[0], "img_s": len(out.labels) / seconds}


def main() -> None:
    cuda = torch.cuda.is_available()
    n = int(os.environ.get("BENCH_STREAM_IMAGES", 2000))
    workers = int(os.environ.get("BENCH_STREAM_WORKERS", 8 if cuda else 2))
    with tempfile.TemporaryDirectory() as tmp:
        made = write_folder(Path(tmp), n)
        rows = []
        for variant in VARIANTS:
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_streaming", variant,
                                   tmp, str(workers)], capture_output=True, text=True,
                                  check=False)
            if done.returncode:
                raise SystemExit(f"bench_streaming {variant}: {done.stderr.strip()[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    gb = 2**30
    first = rows[0]
    print(f"{n:,} PNG images of {SIZE} px in an image folder (written in {made:.0f} s), "
          f"{workers} reader processes, batch {BATCH}, {first['model']} on {first['device']}; "
          f"each variant in a fresh process:")
    for r in rows:
        print(f"  {r['variant']:8s} peak host memory (PSS of the process tree) "
              f"{r['peak'] / gb:5.2f} GB (at start {r['before'] / gb:4.2f} GB, read-ahead and "
              f"outputs {(r['peak'] - r['before']) / gb:4.2f} GB); {r['img_s']:6.0f} img/s")
    before, after = rows
    print(f"  library / before: peak {after['peak'] / before['peak']:.2f}×, growth "
          f"{(after['peak'] - after['before']) / max(1, before['peak'] - before['before']):.2f}×,"
          f" speed {after['img_s'] / before['img_s']:.2f}× (goal: peak < 3 GB at 50,000 images)")


if __name__ == "__main__":
    if len(sys.argv) == 4:  # one variant, in a fresh process (see main)
        print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
    else:
        main()
