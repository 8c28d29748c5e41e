"""Two tiny networks with timm-style pretrained configs."""

from types import SimpleNamespace

import torch
from torch import nn

_CFGS = {
    "tiny_convnet": dict(input_size=(3, 40, 40), interpolation="bicubic", crop_pct=0.875,
                         crop_mode="center", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3),
                         num_classes=7, hf_hub_id="standin/tiny_convnet.fake", url=None),
    "tiny_squash": dict(input_size=(3, 24, 24), interpolation="bilinear", crop_pct=1.0,
                        crop_mode="squash", mean=(0.485, 0.456, 0.406),
                        std=(0.229, 0.224, 0.225), num_classes=5, hf_hub_id=None,
                        url="https://example.invalid/weights/tiny_squash-0123.pth"),
}


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 6):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width * 4, num_classes)
        self.num_features = width * 4

    def forward_features(self, x):
        return torch.relu(self.norm(self.stem(x)))

    def forward_head(self, x, pre_logits: bool = False):
        x = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def list_models():
    return sorted(_CFGS)


def is_model(name: str) -> bool:
    return name.split(".", 1)[0] in _CFGS


def get_pretrained_cfg(name: str):
    cfg = _CFGS.get(name.split(".", 1)[0])
    return None if cfg is None else SimpleNamespace(**cfg)


def create_model(name, pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None,
                 num_classes=None, **kwargs):
    arch = name.split(".", 1)[0]
    if arch not in _CFGS:
        raise RuntimeError(f"Unknown model ({name})")
    cfg = {**_CFGS[arch], **(pretrained_cfg or {}), **(pretrained_cfg_overlay or {})}
    torch.manual_seed(sum(map(ord, arch)))
    model = TinyNet(num_classes or cfg["num_classes"], **kwargs)
    model.pretrained_cfg = cfg
    if pretrained:
        if not cfg.get("file"):
            raise RuntimeError("the stand-in hub never downloads")
        model.load_state_dict(torch.load(cfg["file"], weights_only=True))
    return model
