"""One tiny network with a torchvision-style weights enum (weights read from torch.hub's
cache, never downloaded)."""

import enum
import os
from types import SimpleNamespace
from urllib.parse import urlparse

import torch
from torch import nn


class InterpolationMode(enum.Enum):
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


class TinyVGG(nn.Module):
    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(3))
        self.classifier = nn.Sequential(nn.Linear(45, 12), nn.ReLU(), nn.Linear(12, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _Weights:
    url = "https://example.invalid/models/tinyvgg-abc123.pth"

    def transforms(self):
        return SimpleNamespace(crop_size=[28], resize_size=[32], mean=[0.45, 0.45, 0.4],
                               std=[0.22, 0.22, 0.2], interpolation=InterpolationMode.BILINEAR)


class TinyVGG_Weights:
    DEFAULT = _Weights()


def list_models():
    return ["tinyvgg"]


def get_model_weights(name):
    return {"tinyvgg": TinyVGG_Weights}[name]


def get_model(name, weights=None):
    torch.manual_seed(1)
    model = {"tinyvgg": TinyVGG}[name]()
    if weights is not None:
        path = os.path.join(torch.hub.get_dir(), "checkpoints",
                            os.path.basename(urlparse(weights.url).path))
        model.load_state_dict(torch.load(path, weights_only=True))
    return model
