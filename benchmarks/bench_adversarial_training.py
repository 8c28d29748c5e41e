"""PGD adversarial training throughput: one PGD-AT epoch against k + 1 plain epochs.

PGD-k adversarial training does k input-gradient passes and one training pass per batch, so
k + 1 plain training epochs are its floor (the attack's passes need no weight gradients, so
it can come in under it). Goal: at most 1.15× that floor. Both are timed in one run, side
by side (best of interleaved repeats), on the zoo's ``cnn`` with 2,048 images.
"""

from __future__ import annotations

import time

import torch

from transferability.models import create_model
from transferability.training import fit

N, K, EPS, REPEATS = 2048, 7, 0.3, 3


def _epoch_seconds(method: str, data, **options) -> float:
    torch.manual_seed(0)
    model = create_model("cnn")
    start = time.perf_counter()
    fit(model, data, method=method, epochs=1, batch_size=128, show_progress=False, **options)
    return time.perf_counter() - start


def main() -> None:
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(N, 1, 28, 28, generator=g), torch.randint(0, 10, (N,), generator=g))
    _epoch_seconds("sgd", data)  # warm-up
    plain, adversarial = float("inf"), float("inf")
    for _ in range(REPEATS):
        plain = min(plain, _epoch_seconds("sgd", data))
        adversarial = min(adversarial, _epoch_seconds("pgd_at", data, eps=EPS, steps=K))
    floor = (K + 1) * plain
    print(f"PGD-{K} adversarial training, cnn, {N} images 28×28, batch 128, best of {REPEATS}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    print(f"  plain epoch            {plain:6.2f} s")
    print(f"  floor (k + 1 epochs)   {floor:6.2f} s")
    print(f"  pgd_at epoch           {adversarial:6.2f} s   {adversarial / floor:.2f}× the floor "
          f"(goal ≤ 1.15×: {'met' if adversarial <= 1.15 * floor else 'NOT met'})")


if __name__ == "__main__":
    main()
