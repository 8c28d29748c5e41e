"""Per-step cost of each transfer attack against plain PGD steps.

The goal (issue: attacks are the hot path): one step of an attack costs at most 1.1× a
plain PGD step times the number of gradient evaluations the attack needs per step (VMI with
N = 20 neighbours: 21; SIA with 20 copies: 20). Both run side by side in this process, on
the same model and batch, best of a few interleaved repeats; CUDA is used when present
(with the peak memory of each attack there). The ratio printed is
``seconds per step / (PGD seconds per step × gradients per step)``.
"""

from __future__ import annotations

import time

import torch

from transferability.attacks import PGD, create_attack
from transferability.models import Ensemble, create_model

STEPS, REPEATS, EPS = 5, 5, 16 / 255
#: name -> (options, gradient evaluations per step with those options)
ATTACKS = {
    "mifgsm": ({}, 1),
    "nifgsm": ({}, 1),
    "vmifgsm": ({"samples": 20}, 21),
    "vnifgsm": ({"samples": 20}, 21),
    "pgn": ({"samples": 20}, 40),
    "ti": ({}, 1),
    "mi-di": ({}, 1),
    "si": ({}, 5),
    "admix": ({}, 15),
    "sia": ({}, 20),
    "bsr": ({}, 20),
    "sgm": ({}, 1),
    "linbp": ({}, 1),
    # base attack + ILA steps; ILA's backward stops at the layer, so it costs less
    "ila": ({"layer": "backbone.1", "base_steps": STEPS}, 2),
    "fia": ({"layer": "backbone.1", "copies": 30}, 1 + 30 / STEPS),  # aggregate once
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _once(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _best(fn, device) -> float:
    return min(_once(fn, device) for _ in range(REPEATS))


def _side_by_side(base, fn, device) -> tuple[float, float]:
    """Best times of ``base`` and ``fn``, interleaved so that load drifts hit both alike."""
    times = [(_once(base, device), _once(fn, device)) for _ in range(REPEATS)]
    return min(t[0] for t in times), min(t[1] for t in times)


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size, batch = (224, 16) if device.type == "cuda" else (28, 32)
    torch.manual_seed(0)
    model = create_model("resnet", num_classes=10, in_channels=3).to(device).eval()
    x = torch.rand(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    pgd = PGD(model, EPS, steps=STEPS, random_start=False)
    pgd(x, y)  # warm-up
    print(f"per-step cost vs PGD × gradients; resnet, batch {batch} of {size}×{size}×3, "
          f"{STEPS} steps, best of {REPEATS} interleaved with PGD; {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"  {'attack':10s} {'grads/step':>10s} {'s/step':>9s} {'ratio':>6s}  (goal ≤ 1.10)"
          + ("   peak MiB" if device.type == "cuda" else ""))
    for name, (options, grads) in ATTACKS.items():
        attack = create_attack(name, model, eps=EPS, steps=STEPS, seed=0, **options)
        attack(x[:2], y[:2])  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        base, seconds = (t / STEPS for t in _side_by_side(lambda: pgd(x, y),
                                                           lambda a=attack: a(x, y), device))
        peak = (f"   {torch.cuda.max_memory_allocated() / 2**20:8.0f}"
                if device.type == "cuda" else "")
        print(f"  {name:10s} {grads:10.0f} {seconds:9.4f} {seconds / (base * grads):6.2f}{peak}")
    members = [create_model("resnet", num_classes=10, in_channels=3).to(device).eval()
               for _ in range(3)]
    ensemble = Ensemble(members, combine="loss")
    pgd = PGD(ensemble, EPS, steps=STEPS, random_start=False)
    svre = create_attack("svre", ensemble, eps=EPS, steps=STEPS, seed=0)
    base, seconds = (t / STEPS for t in _side_by_side(lambda: pgd(x, y), lambda: svre(x, y),
                                                       device))
    grads = (len(members) + svre.inner_steps) / len(members)  # in ensemble gradients
    print(f"  {'svre':10s} {grads:10.0f} {seconds:9.4f} {seconds / (base * grads):6.2f}"
          "   (3-member ensemble; K + 4K member gradients = 5 ensemble gradients)")
    if device.type == "cuda":
        _resnet50_memory(device)


def _resnet50_memory(device) -> None:
    """Peak memory of 20-copy attacks on a 224-px ResNet-50 at batch 16 (the 24 GB goal)."""
    try:
        from torchvision.models import resnet50
    except ImportError:
        print("  torchvision not installed: ResNet-50 memory check skipped")
        return
    model = resnet50(weights=None).to(device).eval()
    x = torch.rand(16, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (16,), device=device)
    for name in ("sia", "bsr", "admix"):
        for copies_batch in (None, 5):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            attack = create_attack(name, model, eps=EPS, steps=2, copies_batch=copies_batch)
            seconds = _best(lambda a=attack: a(x, y), device) / 2
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"  ResNet-50 224px batch 16, {name}, copies_batch={copies_batch}: "
                  f"peak {peak:.1f} GiB, {seconds:.2f} s/step")


if __name__ == "__main__":
    main()
