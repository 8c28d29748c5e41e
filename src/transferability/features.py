"""One batched pass over a dataset: penultimate features, logits and probabilities together.

Every consumer (linear probes, estimators, the zoo's feature cache) goes through
:func:`extract`, so a model is run over a dataset once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._validation import check_images, model_device
from .models.classifier import penultimate
from .utils import batches, evaluating

__all__ = ["Outputs", "extract", "predict"]


@dataclass
class Outputs:
    """What a model produces on a dataset, on the CPU, in dataset order."""

    features: torch.Tensor  # N × D penultimate features
    logits: torch.Tensor  # N × C
    labels: torch.Tensor  # N target labels (those of the dataset)

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(dim=1)

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {"features": self.features, "logits": self.logits, "labels": self.labels}


@torch.no_grad()
def extract(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
            batch_size: int = 256) -> Outputs:
    """Run ``model`` (in eval mode, restored afterwards) over images ``x`` in batches."""
    check_images(x, "x")
    device = model_device(model)
    feats, logits = [], []
    with evaluating(model):
        for (xb,) in batches(x, batch_size=batch_size):
            xb = xb.to(device)
            f = penultimate(model, xb)
            head = getattr(model, "head", None) or getattr(model, "fc", None)
            out = head(f) if isinstance(head, nn.Linear) else model(xb)
            feats.append(f.flatten(1).float().cpu())
            logits.append(out.float().cpu())
    labels = y.cpu().long() if y is not None else torch.empty(0, dtype=torch.long)
    return Outputs(torch.cat(feats), torch.cat(logits), labels)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256,
            name: str = "model") -> torch.Tensor:
    """Outputs (logits) of ``model`` on ``x`` in batches, in eval mode (restored), on the
    model's device; checked to be N × C."""
    device = model_device(model)
    with evaluating(model):
        out = torch.cat([model(xb.to(device)) for (xb,) in batches(x, batch_size=batch_size)])
    if out.ndim != 2:
        raise ValueError(f"{name}: expected outputs shaped N×C, got shape {tuple(out.shape)}")
    return out
