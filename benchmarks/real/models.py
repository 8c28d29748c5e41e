"""The four pretrained CIFAR-10 ResNets of akamaster/pytorch_resnet_cifar10 as
``py:benchmarks/real/models.py:resnet20`` (...32, 44, 56) model arguments.

Set ``TRANSFERABILITY_CIFAR_RESNETS`` to a checkout of that repository: its ``resnet.py``
builds the architecture and ``pretrained_models/resnetNN-*.th`` holds the weights (a dict
with ``state_dict``, keys prefixed ``module.``, read with ``weights_only=True``). The models
were trained on ImageNet-normalised inputs, so the normalisation goes in front as a module
and the model takes images in [0, 1], as every model of the library does.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from transferability.models import Normalize

__all__ = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet20_relu", "repository"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def repository() -> Path:
    """The checkout named by ``TRANSFERABILITY_CIFAR_RESNETS`` (a clear error otherwise)."""
    root = os.environ.get("TRANSFERABILITY_CIFAR_RESNETS")
    if not root or not (Path(root) / "resnet.py").is_file():
        raise ValueError("TRANSFERABILITY_CIFAR_RESNETS: expected a checkout of "
                         f"akamaster/pytorch_resnet_cifar10 (with resnet.py), got {root!r}")
    return Path(root)


class _ReLUModuleBlock(nn.Module):
    """One of their residual blocks computing what it computes, with its two ReLUs as
    ``nn.ReLU`` modules (their ``forward`` calls ``F.relu``; the class name says Block, so it
    is found as a residual block): SGM and LinBP act on
    activation modules, so they need these."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2 = block.conv1, block.bn1, block.conv2, block.bn2
        self.shortcut, self.relu1, self.relu2 = block.shortcut, nn.ReLU(), nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))




def _pretrained(depth: int, relu_modules: bool = False) -> nn.Module:
    root = repository()
    spec = importlib.util.spec_from_file_location("akamaster_resnet", root / "resnet.py")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    (weights,) = sorted((root / "pretrained_models").glob(f"resnet{depth}-*.th"))
    state = torch.load(weights, map_location="cpu", weights_only=True)["state_dict"]
    net = getattr(code, f"resnet{depth}")()
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    if relu_modules:
        for layer in (net.layer1, net.layer2, net.layer3):
            for i, block in enumerate(layer):
                layer[i] = _ReLUModuleBlock(block)
    return nn.Sequential(Normalize(MEAN, STD), net).eval()


def resnet20() -> nn.Module:
    return _pretrained(20)


def resnet32() -> nn.Module:
    return _pretrained(32)


def resnet44() -> nn.Module:
    return _pretrained(44)


def resnet56() -> nn.Module:
    return _pretrained(56)


def resnet20_relu() -> nn.Module:
    """ResNet-20 with the same weights and outputs, its blocks' ReLUs as modules: the
    surrogate of the audit, so that SGM and LinBP run on it too."""
    return _pretrained(20, relu_modules=True)
