"""Models shaped like users' own (no transferability Classifier), for tests and the CLI's
``py:FILE.py:FUNCTION`` entry points. Weights are seeded, so every call gives the same model."""

import torch
from torch import nn


class VGGLike(nn.Module):
    """VGG/AlexNet/paper-code shape: ``features`` (convolutions, not the penultimate layer)
    and ``classifier = Sequential(Linear(3136, 128), ReLU, Linear(128, 10))``."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(3136, 128), nn.ReLU(),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class TimmLike(nn.Module):
    """timm's shape: ``forward_features`` then ``forward_head(pre_logits=...)``."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4))
        self.pre = nn.Sequential(nn.Flatten(), nn.Linear(256, 48), nn.Tanh())
        self.head = nn.Linear(48, num_classes)

    def forward_features(self, x):
        return self.stem(x)

    def forward_head(self, x, pre_logits: bool = False):
        x = self.pre(x)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class FcLike(nn.Module):
    """torchvision's shape: pooled features into an ``fc`` head."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
                                  nn.Flatten())
        self.fc = nn.Linear(72, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


class NoLinear(nn.Module):
    """A fully convolutional classifier: no nn.Linear at all."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 10, 28), nn.Flatten())

    def forward(self, x):
        return self.net(x)


def _seeded(cls):
    def build():
        torch.manual_seed(0)
        return cls().eval()
    build.__name__ = cls.__name__.lower()
    return build


vgg_like, timm_like, fc_like, no_linear = map(_seeded, (VGGLike, TimmLike, FcLike, NoLinear))


def saturated_linear() -> nn.Module:
    """A linear MNIST classifier with logits in the thousands: its softmax saturates, so
    cross-entropy gradients vanish (for the robustness command)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        model[1].weight.mul_(2000)
    return model
