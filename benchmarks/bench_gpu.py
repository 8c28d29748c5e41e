"""GPU feature extraction: the library's streamed ``extract`` against the model's own forward.

* throughput of a resnet50 at 224 px (timm's, else torchvision's) on host images, fp32
  and bf16, against the model's own fp32 forward on inputs already on the GPU (goals:
  fp32 ≥ 0.8×, bf16 ≥ 1.8× fp32).

Host memory while streaming an image folder is ``bench_streaming``.

It also prints how far a CPU and a GPU run of the same weights lie apart (features, LogME,
PGD). Needs CUDA: without a GPU it prints why and returns. ``python -m benchmarks gpu``.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import Dataset

from transferability.devices import place
from transferability.features import extract, predict

N_IMAGES, BATCH, SIZE, WORKERS = 4096, 256, 224, 12


def resnet50() -> tuple[torch.nn.Module, str]:
    """A randomly initialised resnet50 (1000 classes): timm's, else torchvision's."""
    try:
        import timm
        return timm.create_model("resnet50", pretrained=False), "timm resnet50"
    except ImportError:
        pass
    try:
        import torchvision
        return torchvision.models.resnet50(), "torchvision resnet50"
    except ImportError:
        raise SystemExit("bench_gpu: needs timm or torchvision for a resnet50") from None


def _timed(fn, device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda d: None)
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def own_forward(model, x_gpu: torch.Tensor) -> None:
    """The model's own fp32 forward on inputs already on the GPU (the ceiling)."""
    with torch.no_grad():
        for i in range(0, len(x_gpu), BATCH):
            model(x_gpu[i:i + BATCH])


def throughput(device: torch.device) -> None:
    model, name = resnet50()
    model = place(model.eval(), device, name)  # on the GPU, channels_last
    g = torch.Generator().manual_seed(0)
    host = torch.randint(0, 256, (N_IMAGES, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    x_gpu = host[:BATCH * 4].to(device).float().div_(255).contiguous(
        memory_format=torch.channels_last)
    runs = {
        "own forward, fp32, inputs on the GPU": lambda: own_forward(model, x_gpu),
        "extract, fp32, uint8 host tensor": lambda: extract(model, host, batch_size=BATCH),
        "extract, bf16, uint8 host tensor": lambda: extract(model, host, batch_size=BATCH,
                                                            precision="bf16"),
        "extract, fp32, Dataset + workers": lambda: extract(
            model, _Images(host), batch_size=BATCH, workers=WORKERS),
    }
    counts = {k: len(x_gpu) if k.startswith("own") else N_IMAGES for k in runs}
    own_forward(model, x_gpu[:BATCH])  # warm-up: cudnn autotuning, the allocator, workers
    for precision in ("fp32", "bf16"):
        extract(model, host[:2 * BATCH], batch_size=BATCH, precision=precision)
    extract(model, _Images(host[:2 * BATCH]), batch_size=BATCH, workers=2)
    best = dict.fromkeys(runs, 0.0)
    for _ in range(2):
        for k, fn in runs.items():
            best[k] = max(best[k], counts[k] / _timed(fn, device))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{name} at {SIZE} px, batch {BATCH}, {N_IMAGES} host images (uint8), {where}, "
          f"torch {torch.__version__}")
    for k, v in best.items():
        print(f"  {k:42s} {v:8.0f} img/s")
    own = best["own forward, fp32, inputs on the GPU"]
    fp32 = best["extract, fp32, uint8 host tensor"]
    print(f"  extract fp32 / own forward fp32: {fp32 / own:.2f}× (goal ≥ 0.8)")
    bf16 = best["extract, bf16, uint8 host tensor"]
    print(f"  extract bf16 / extract fp32:     {bf16 / fp32:.2f}× (goal ≥ 1.8)")
    print(f"  Dataset with {WORKERS} workers / uint8 tensor: "
          f"{best['extract, fp32, Dataset + workers'] / fp32:.2f}×")


class _Images(Dataset):
    """Items ``(uint8 image, label)`` of an in-memory tensor (a Dataset like any other)."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


def agreement(device: torch.device) -> None:
    """How far a CPU run and a GPU run of the same weights lie apart (docs/scaling.md): a
    cnn trained one epoch on digits, its features and LogME on the test split, and PGD-10
    (no random start) crafted on each device."""
    import copy

    from transferability.attacks import PGD
    from transferability.data import dataset_from_spec, per_class
    from transferability.estimators import logme
    from transferability.models import create_model
    from transferability.training import fit

    train, test = (dataset_from_spec("digits", split, seed=0) for split in ("train", "test"))
    torch.manual_seed(0)
    cpu = create_model("cnn", num_classes=10)
    fit(cpu, train, epochs=1, seed=0, show_progress=False)
    cpu.eval()
    gpu = place(copy.deepcopy(cpu), device, "cnn")
    a, b = extract(cpu, test.x, test.y), extract(gpu, test.x, test.y)
    rel = ((a.features - b.features).abs().max() / a.features.abs().max()).item()
    same_pred = (a.logits.argmax(1) == b.logits.argmax(1)).float().mean().item()
    la, lb = logme(a.features, a.labels), logme(b.features, b.labels)
    probe = per_class(test, 20, seed=0)
    eps = 0.1
    adv_a = PGD(cpu, eps, steps=10, random_start=False)(probe.x, probe.y)
    adv_b = PGD(gpu, eps, steps=10, random_start=False)(probe.x, probe.y).cpu()
    diff = (adv_a - adv_b).abs()
    fooled_a = (predict(cpu, adv_a).argmax(1) != probe.y).float().mean().item()
    fooled_b = (predict(gpu, adv_b.to(device)).argmax(1).cpu() != probe.y).float().mean().item()
    print(f"\nCPU vs {torch.cuda.get_device_name(device)}, same weights (cnn, 1 epoch on digits):")
    print(f"  features: max |Δ| / max |f| = {rel:.1e}; same prediction on {same_pred:.2%} of "
          f"{len(test)} test images; LogME {la:.6f} vs {lb:.6f} (Δ {abs(la - lb):.1e})")
    print(f"  PGD-10 ε={eps}, no random start, {len(probe)} images: pixels differing "
          f"{(diff > 1e-6).float().mean().item():.1%}, by more than ε "
          f"{(diff > eps).float().mean().item():.1%}, max |Δ| {diff.max().item():.3f}; "
          f"success {fooled_a:.1%} (CPU) vs {fooled_b:.1%} (GPU)")


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA GPU: skipped (run on a GPU machine)")
        return
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    agreement(device)
    throughput(device)


if __name__ == "__main__":
    main()
