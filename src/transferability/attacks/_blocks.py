"""Random block partitions of an image, shared by SIA and BSR."""

from __future__ import annotations

import torch


def random_lengths(total: int, parts: int, generator: torch.Generator | None,
                   device: torch.device) -> list[int]:
    """``parts`` positive integers summing to ``total``, proportional to uniform draws."""
    if total < parts:
        raise ValueError(f"blocks: {parts} blocks do not fit in {total} pixels")
    weights = torch.rand(parts, generator=generator, device=device).cpu() + 0.5
    cuts = torch.round(torch.cumsum(weights, 0) / weights.sum() * (total - parts)).long()
    lengths = torch.diff(cuts, prepend=torch.zeros(1, dtype=torch.long)) + 1
    return lengths.tolist()


def randint(high: int, generator: torch.Generator | None, device: torch.device) -> int:
    """One integer in ``[0, high)`` from ``generator``."""
    return int(torch.randint(0, high, (), generator=generator, device=device))


def uniform(generator: torch.Generator | None, device: torch.device) -> float:
    """One float in ``[0, 1)`` from ``generator``."""
    return float(torch.rand((), generator=generator, device=device))
