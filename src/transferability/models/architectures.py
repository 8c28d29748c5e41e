"""Small image classifiers for 28×28 inputs, each a :class:`Classifier` of blocks.

``mlp``, ``lenet`` (LeCun et al. 1998), ``cnn`` (two conv blocks, the usual MNIST net),
``resnet`` (a CIFAR-style ResNet-8 with BatchNorm, He et al. 2016) and ``resnet18``
(ResNet-18's widths and depth, for the 32×32 colour task). All accept any square input of
at least 16 pixels via adaptive pooling, and ``in_channels`` 1 or 3.
"""

from __future__ import annotations

from torch import nn

from .classifier import Classifier, Normalize
from .registry import register_model

# MNIST statistics: a sensible default for the bundled grey-scale data.
_MEAN, _STD = 0.1307, 0.3081


def _normalize(in_channels: int) -> Normalize:
    return Normalize([_MEAN] * in_channels, [_STD] * in_channels)


@register_model("mlp")
def mlp(num_classes: int = 10, in_channels: int = 1, hidden: int = 256, image_size: int = 28):
    """Two hidden ReLU layers on the flattened image."""
    d = in_channels * image_size * image_size
    backbone = nn.Sequential(
        nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU()),
        nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU()),
    )
    return Classifier(backbone, hidden // 2, num_classes, _normalize(in_channels))


@register_model("lenet")
def lenet(num_classes: int = 10, in_channels: int = 1):
    """LeNet-5: conv5-pool-conv5-pool-fc120-fc84."""
    backbone = nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AdaptiveMaxPool2d(5)),
        nn.Sequential(nn.Flatten(), nn.Linear(16 * 25, 120), nn.ReLU()),
        nn.Sequential(nn.Linear(120, 84), nn.ReLU()),
    )
    return Classifier(backbone, 84, num_classes, _normalize(in_channels))


@register_model("cnn")
def cnn(num_classes: int = 10, in_channels: int = 1, width: int = 32):
    """Two conv blocks (width, 2·width) with max-pooling and a 128-unit dense layer."""
    backbone = nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                      nn.AdaptiveMaxPool2d(7)),
        nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 49, 128), nn.ReLU()),
    )
    return Classifier(backbone, 128, num_classes, _normalize(in_channels))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN layers with an identity or 1×1 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@register_model("resnet")
def resnet(num_classes: int = 10, in_channels: int = 1, width: int = 16):
    """ResNet-8: a conv-BN stem and three stages of one basic block (width ×1, ×2, ×4)."""
    w = width
    backbone = nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()),
        BasicBlock(w, w),
        BasicBlock(w, 2 * w, stride=2),
        BasicBlock(2 * w, 4 * w, stride=2),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    )
    return Classifier(backbone, 4 * w, num_classes, _normalize(in_channels))


@register_model("resnet18")
def resnet18(num_classes: int = 10, in_channels: int = 3, width: int = 64):
    """ResNet-18 (He et al. 2016): four stages of two basic blocks, widths ×1, ×2, ×4, ×8.

    The stem is one 3×3 convolution of stride 2 (no max-pool), so a 32×32 image enters the
    first stage at 16×16: a quarter of CIFAR ResNet-18's cost, trainable on a CPU.
    """
    w = width
    stages = [nn.Sequential(nn.Conv2d(in_channels, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w),
                            nn.ReLU())]
    for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
        cin = w if i == 0 else cout // 2
        stages.append(nn.Sequential(BasicBlock(cin, cout, stride=1 if i == 0 else 2),
                                    BasicBlock(cout, cout)))
    stages.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    return Classifier(nn.Sequential(*stages), 8 * w, num_classes,
                      Normalize([0.5] * in_channels, [0.25] * in_channels))
