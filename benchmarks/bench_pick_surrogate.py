"""Scoring N candidate surrogates on M images against the candidates' forward passes alone
(goal: at most 1.2×). The scores are the output-based ones (agreement, affine fit,
accuracy, parameter count, LogME, LEEP, NCE, H-score)."""

from __future__ import annotations

import time

import torch
from torch import nn

from transferability.features import extract
from transferability.pick_surrogate import VictimOutputs, score_candidates

N, M, C = 6, 4096, 10


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                         nn.Flatten(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, C))


def main() -> None:
    x = torch.rand(M, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    candidates = {f"m{i}": _model(i) for i in range(N)}
    logits = _model(99)(x).detach()
    victim = VictimOutputs(list(range(M)), torch.arange(M) % C, logits)
    start = time.perf_counter()
    for name, model in candidates.items():
        extract(model, x, name=name)
    forward = time.perf_counter() - start
    start = time.perf_counter()
    score_candidates(candidates, x, victim, estimators=["logme", "leep", "nce", "h_score"])
    scoring = time.perf_counter() - start
    print(f"{N} candidates, {M} images: forward passes {forward:.2f} s, scoring "
          f"{scoring:.2f} s, ratio {scoring / forward:.2f}× (goal ≤ 1.2×)")


if __name__ == "__main__":
    main()
