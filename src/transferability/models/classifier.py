"""The one model shape the library relies on: ``normalize → backbone → head``.

Every zoo model is a :class:`Classifier`. Its ``backbone`` is an ``nn.Sequential`` of
blocks (so "fine-tune the last k blocks" means what it says, see ``fine_tune``),
``features(x)`` returns the penultimate features and ``head`` is a single ``nn.Linear``.
Nothing else in the library requires this shape: features of any ``nn.Module`` come from
:mod:`transferability.features`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Normalize", "Classifier", "check_classifier", "replace_head"]


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` inside the model, so attacks see [0, 1] inputs."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if any(s <= 0 for s in std):
            raise ValueError(f"std: expected positive values, got {list(std)}")
        def channels(v):
            return torch.tensor(list(v), dtype=torch.float32).view(1, -1, 1, 1)

        self.register_buffer("mean", channels(mean))
        self.register_buffer("std", channels(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class Classifier(nn.Module):
    """``head(backbone(normalize(x)))`` with the penultimate features exposed.

    Args:
        backbone: blocks mapping images to a flat feature vector of size ``feature_dim``.
        feature_dim: size of the penultimate features.
        num_classes: outputs of the linear head.
        normalize: optional :class:`Normalize` in front (identity when ``None``).
    """

    def __init__(self, backbone: nn.Sequential, feature_dim: int, num_classes: int,
                 normalize: nn.Module | None = None):
        super().__init__()
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, N × feature_dim."""
        return self.backbone(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def check_classifier(model, name: str = "model") -> Classifier:
    """Check that ``model`` has the :class:`Classifier` shape (features + linear head)."""
    if not isinstance(model, Classifier):
        raise ValueError(f"{name}: expected a transferability Classifier (create_model), "
                         f"got {type(model).__name__}")
    return model


def replace_head(model: Classifier, num_classes: int) -> Classifier:
    """Swap in a fresh ``nn.Linear`` head with ``num_classes`` outputs (same device/dtype)."""
    check_classifier(model)
    if int(num_classes) < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    old = model.head
    model.head = nn.Linear(old.in_features, int(num_classes))
    model.head.to(old.weight.device, old.weight.dtype)
    return model
