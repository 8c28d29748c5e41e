"""timm's eval data config and transform, written plainly for one CHW tensor at a time."""

import math

import torch.nn.functional as F


def resolve_model_data_config(model):
    cfg = model.pretrained_cfg
    return {k: cfg[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct",
                                "crop_mode")}


def create_transform(input_size, interpolation, mean, std, crop_pct, crop_mode):
    size = input_size[-1]
    scale = math.floor(size / crop_pct)

    def transform(img):  # img: C×H×W float in [0, 1]
        c, h, w = img.shape
        if crop_mode == "squash":
            nh, nw = scale, scale
        elif h <= w:
            nh, nw = scale, int(scale * w / h)
        else:
            nh, nw = int(scale * h / w), scale
        out = F.interpolate(img[None], size=(nh, nw), mode=interpolation, align_corners=False,
                            antialias=True)[0]
        top, left = round((nh - size) / 2), round((nw - size) / 2)
        out = out[:, top:top + size, left:left + size]
        m = out.new_tensor(mean)[:, None, None]
        s = out.new_tensor(std)[:, None, None]
        return (out - m) / s
    return transform
