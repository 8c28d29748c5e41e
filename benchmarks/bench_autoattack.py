"""AutoAttack: APGD-CE's cost per iteration against a PGD step, and the whole standard
AutoAttack against torchattacks' (speed and robust-accuracy agreement) on the same model,
images, batch and device.

The model is a ``cnn`` trained with PGD-AT (ε = 0.1, ε warm-up) on the bundled MNIST, so
that robust accuracy at ε = 0.1 is neither 0 nor 1 and the agreement means something.
torchattacks' own ``AutoAttack`` runs APGD, APGD-T and FAB with 10 iterations; the
comparison builds its standard AutoAttack with the paper's 100 (its ``MultiAttack`` of
``APGD``, ``APGDT``, ``FAB(multi_targeted=True)`` and ``Square``, 5,000 queries), so both
sides run the same attacks. Runs on CUDA when present. ``BENCH_AA_N`` sets the number of
test images (default 1,000; the agreement goal is ±1 percentage point there) and
``BENCH_AA_STEPS`` the iterations of both sides (default 100).
"""

from __future__ import annotations

import os
import time
import warnings

import torch

from transferability.attacks import APGD, PGD, AutoAttack
from transferability.data import dataset_from_spec
from transferability.models import create_model
from transferability.training import fit

EPS, BATCH = 0.1, 500


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, *args):
    _sync()
    start = time.perf_counter()
    out = fn(*args)
    _sync()
    return time.perf_counter() - start, out


def _robust_model(device):
    torch.manual_seed(0)
    model = create_model("cnn", num_classes=10)
    train = dataset_from_spec({"dataset": "mnist", "n_per_class": 200}, "train")
    fit(model, train, method="pgd_at", eps=EPS, steps=5, warmup_epochs=1, epochs=3,
        batch_size=64, seed=0, show_progress=False)
    return model.to(device).eval()


def _accuracy(model, x, y, batch=BATCH):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]).argmax(1) == y[i:i + batch]
                          for i in range(0, len(x), batch)]).double().mean().item()


def per_iteration(model, x, y, steps: int = 20, repeats: int = 3) -> float:
    """APGD-CE seconds per iteration over PGD seconds per step, best of ``repeats``
    interleaved (so drifts in machine load hit both alike)."""
    apgd, pgd = APGD(model, EPS, steps), PGD(model, EPS, steps=steps)
    apgd(x, y), pgd(x, y)  # warm-up
    t_apgd = t_pgd = float("inf")
    for _ in range(repeats):
        t_apgd = min(t_apgd, _timed(apgd, x, y)[0])
        t_pgd = min(t_pgd, _timed(pgd, x, y)[0])
    return (t_apgd / (steps + 1)) / (t_pgd / steps)


def main() -> None:
    device = _device()
    n = int(os.environ.get("BENCH_AA_N", 1000))
    steps = int(os.environ.get("BENCH_AA_STEPS", 100))
    model = _robust_model(device)
    test = dataset_from_spec("mnist", "test")
    x, y = test.x[:n].to(device), test.y[:n].to(device)
    print(f"cnn (PGD-AT, ε={EPS}) on {n} MNIST test images, L∞ ε={EPS}, batch {BATCH}; "
          f"{steps} iterations; torch {torch.__version__}, {device}")
    ratio = per_iteration(model, x[:BATCH], y[:BATCH])
    print(f"  APGD-CE per iteration / PGD per step: {ratio:.2f}× (goal ≤ 1.1×)")

    ours = AutoAttack(model, "linf", EPS, steps=steps, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, x_adv = _timed(lambda: torch.cat([ours(x[i:i + BATCH], y[i:i + BATCH])
                                                   for i in range(0, n, BATCH)]))
    robust = _accuracy(model, x_adv, y)
    print(f"  clean accuracy {_accuracy(model, x, y):.4f}")
    print(f"  library AutoAttack (standard): robust {robust:.4f} in {seconds:.1f} s")
    try:
        import torchattacks
    except ImportError:
        print("  torchattacks     not installed, comparison skipped")
        return
    common = {"norm": "Linf", "eps": EPS, "seed": 0}
    theirs = torchattacks.MultiAttack([
        torchattacks.APGD(model, steps=steps, loss="ce", **common),
        torchattacks.APGDT(model, steps=steps, n_classes=10, **common),
        torchattacks.FAB(model, steps=steps, multi_targeted=True, n_classes=10, **common),
        torchattacks.Square(model, n_queries=5000, **common)])
    t_seconds, t_adv = _timed(lambda: torch.cat([theirs(x[i:i + BATCH], y[i:i + BATCH])
                                                 for i in range(0, n, BATCH)]))
    t_robust = _accuracy(model, t_adv, y)
    print(f"  torchattacks {torchattacks.__version__} standard AutoAttack: robust {t_robust:.4f} "
          f"in "
          f"{t_seconds:.1f} s")
    print(f"  difference {100 * (robust - t_robust):+.2f} pp (goal within ±1); time ratio "
          f"library/torchattacks {seconds / t_seconds:.2f}× (goal ≤ 1.0×)")


if __name__ == "__main__":
    main()
