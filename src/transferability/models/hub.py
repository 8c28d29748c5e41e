"""Models by name from timm, torchvision and the Hugging Face hub, preprocessing attached.

Arguments (wherever a model argument is accepted)::

    timm:resnet50                    # pretrained weights from the local cache
    timm:resnet50.a1_in1k            # a timm pretrained tag
    torchvision:resnet18?weights=none
    timm:resnet50?weights=path/to/file.safetensors   # or a state dict (.pt/.pth/.bin)
    hf-hub:timm/resnet18.a1_in1k     # timm's loader of a Hugging Face repository

Nothing is ever downloaded: pretrained weights are read from the local caches of
``huggingface_hub`` (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``)
and ``torch.hub`` (``$TORCH_HOME/hub/checkpoints``); when absent, a one-line error names
the model and the places looked in. A missing package names the extra to install.

The result is a :class:`HubModel`: the hub's own eval preprocessing
(:class:`~transferability.models.preprocess.Preprocess`, from the model's pretrained config)
in front of the bare network, so it takes images in [0, 1] at any resolution. Its features
are the classifier's input, ``forward_head(x, pre_logits=True)`` where the network offers
it (timm), else the input of the last ``nn.Linear`` (torchvision).
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import torch
from torch import nn

from .preprocess import Preprocess

__all__ = ["HUBS", "HubModel", "HubArgument", "parse_hub_argument", "import_hub",
           "load_hub_model", "read_state_dict", "hf_hub_cache"]

#: Prefixes of hub model arguments, and the extra that installs each hub's package.
HUBS = {"timm": "timm", "torchvision": "torchvision", "hf-hub": "timm"}
_IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


class HubModel(nn.Module):
    """``net(preprocess(x))`` for images in [0, 1]; ``meta`` names the hub, model and
    weights (a cache key); :attr:`feature_layer` names where features are taken."""

    def __init__(self, net: nn.Module, preprocess: Preprocess, meta: dict):
        super().__init__()
        self.preprocess, self.net = preprocess, net
        self.pre_logits = nn.Identity()  # where forward_head(pre_logits=True) passes
        self.meta = {**meta, "preprocess": preprocess.config()}
        self._head = hasattr(net, "forward_head") and hasattr(net, "forward_features")
        #: the module whose output are the features (``None``: the last-Linear rule)
        self.feature_layer = "pre_logits" if self._head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(x)
        if not self._head:
            return self.net(x)
        f = self.net.forward_features(x)
        self.pre_logits(self.net.forward_head(f, pre_logits=True))
        return self.net.forward_head(f)


@dataclass(frozen=True)
class HubArgument:
    """A parsed hub argument: ``hub``, ``name`` and ``weights`` (``pretrained``, ``none``
    or a file path)."""

    hub: str
    name: str
    weights: str = "pretrained"

    @property
    def identity(self) -> str:
        w = self.weights
        if w not in ("pretrained", "none"):
            w = str(Path(w).resolve())
        return f"{self.hub}:{self.name}?weights={w}"

    @property
    def short(self) -> str:
        return self.name.rpartition("/")[2]


def parse_hub_argument(item: str) -> HubArgument:
    """``HUB:NAME[?weights=pretrained|none|FILE]`` → :class:`HubArgument` (checked: the
    hub, the name, the option and that a weights file exists)."""
    hub, _, rest = item.partition(":")
    if hub not in HUBS:
        raise ValueError(f"model: {item!r} does not start with one of "
                         f"{', '.join(h + ':' for h in HUBS)}")
    name, _, query = rest.partition("?")
    if not name or any(c.isspace() for c in name) or (hub == "hf-hub" and name.count("/") != 1):
        want = "ORG/NAME" if hub == "hf-hub" else "NAME"
        raise ValueError(f"model: {item!r} should read {hub}:{want}[?weights=pretrained|none|"
                         "FILE]")
    weights = "pretrained"
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if key != "weights" or not eq or not value:
            raise ValueError(f"model: {item!r}: the only option is weights=pretrained|none|FILE, "
                             f"got {part!r}")
        weights = value
    if weights not in ("pretrained", "none") and not Path(weights).is_file():
        raise ValueError(f"model: {item!r}: no weights file {weights!r}")
    return HubArgument(hub, name, weights)


def import_hub(arg: HubArgument):
    """The hub package of ``arg`` (``timm`` or ``torchvision``), or a one-line error naming
    the extra that installs it."""
    return _import("torchvision" if arg.hub == "torchvision" else "timm", arg)


def _import(module: str, arg: HubArgument):
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install (torchvision's C ops)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"model: {arg.hub}:{arg.name} needs the {module} package, which does not "
                         f"import here ({why}); install it with "
                         f"pip install 'transferability[{HUBS[arg.hub]}]'") from None


def read_state_dict(path: str | Path, name: str = "weights") -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``\\ d state dict (loaded with
    ``weights_only=True``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is
    unwrapped)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise ValueError(f"{name}: reading {path.name} needs the safetensors package; "
                                 "install it with pip install 'transferability[timm]'") from None
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{name}: cannot read {path} as a state dict ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{name}: {path} does not hold a state dict of tensors")
    return state


def _load_file(net: nn.Module, arg: HubArgument) -> None:
    try:
        net.load_state_dict(read_state_dict(arg.weights, "weights"))
    except RuntimeError as exc:
        raise ValueError(f"weights: {arg.weights} does not fit {arg.hub}:{arg.name}: "
                         f"{str(exc).splitlines()[1 if len(str(exc).splitlines()) > 1 else 0]}"
                         .rstrip()) from None


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() /
                                                                ".cache")) / "huggingface"
    return Path(home) / "hub"


def _hf_cached(repo: str, filename: str) -> Path | None:
    """``repo``'s ``filename`` in the local hub cache (the revision ``refs/main`` names)."""
    folder = hf_hub_cache() / f"models--{repo.replace('/', '--')}"
    try:
        revision = (folder / "refs" / "main").read_text().strip()
    except OSError:
        return None
    path = folder / "snapshots" / revision / filename
    return path if path.is_file() else None


def _cached_timm_weights(cfg, arg: HubArgument) -> Path:
    """The cached file of a timm pretrained config (hub files, then the torch.hub URL)."""
    looked = []
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if repo:
        names = [getattr(cfg, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin"]
        for filename in filter(None, names):
            path = _hf_cached(repo, filename)
            if path is not None:
                return path
        looked.append(f"{repo} in {hf_hub_cache()}")
    url = getattr(cfg, "url", None) if cfg is not None else None
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if path.is_file():
            return path
        looked.append(str(path))
    _no_weights(arg, looked)


def _no_weights(arg: HubArgument, looked: list[str]):
    where = "; ".join(looked) if looked else "it has no pretrained weights"
    raise ValueError(f"weights: no pretrained weights for {arg.hub}:{arg.name} in the local "
                     f"cache (looked for {where}); nothing is downloaded: fetch them once online, "
                     "or pass ?weights=none or ?weights=FILE")


def _timm_preprocess(timm, net: nn.Module) -> Preprocess:
    """timm's ``resolve_model_data_config`` turned into :class:`Preprocess` (as
    ``transforms_imagenet_eval``: resize to ``floor(size / crop_pct)``)."""
    import math

    cfg = timm.data.resolve_model_data_config(net)
    size = tuple(cfg["input_size"][-2:])
    crop_pct = cfg.get("crop_pct") or 0.875
    mode = cfg.get("crop_mode") or "center"
    if mode not in ("center", "squash"):
        raise ValueError(f"model: timm crop_mode {mode!r} is not supported (center, squash)")
    scale = tuple(math.floor(s / crop_pct) for s in size)
    if mode == "center" and scale[0] != scale[1]:
        raise ValueError(f"model: timm input size {size} is not square; only square inputs "
                         "are supported with crop_mode 'center'")
    resize = scale[0] if mode == "center" else scale
    return Preprocess(size, resize, cfg["interpolation"], cfg["mean"], cfg["std"], mode)


def _load_timm(arg: HubArgument) -> HubModel:
    timm = _import("timm", arg)
    kwargs: dict = {}
    name = arg.name
    if arg.hub == "hf-hub":  # the repository's config.json, read from the cache
        config_file = _hf_cached(arg.name, "config.json")
        if config_file is None:
            raise ValueError(f"model: hf-hub:{arg.name} is not in the local Hugging Face cache "
                             f"(looked for {arg.name}/config.json in {hf_hub_cache()}); nothing "
                             "is downloaded")
        config = json.loads(config_file.read_text())
        name = config["architecture"]
        pretrained_cfg = {k: v for k, v in config.get("pretrained_cfg", {}).items()
                          if k != "source"}
        pretrained_cfg["hf_hub_id"] = arg.name
        kwargs = {"pretrained_cfg": pretrained_cfg, **config.get("model_args", {})}
        if config.get("num_classes"):
            kwargs["num_classes"] = config["num_classes"]
    elif not timm.is_model(name):
        raise ValueError(f"model: timm has no model {name!r} (timm.list_models() lists them)")
    try:
        if arg.weights == "pretrained":
            if arg.hub == "hf-hub":
                cfg = SimpleNamespace(**kwargs["pretrained_cfg"])
            else:
                cfg = timm.models.get_pretrained_cfg(name)
            file = _cached_timm_weights(cfg, arg)
            net = timm.create_model(name, pretrained=True, **kwargs,
                                    pretrained_cfg_overlay={"file": str(file)})
        else:
            net = timm.create_model(name, pretrained=False, **kwargs)
            if arg.weights != "none":
                _load_file(net, arg)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"model: timm could not build {arg.hub}:{arg.name}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                         ) from None
    return HubModel(net.eval(), _timm_preprocess(timm, net), _meta(arg))


def _load_torchvision(arg: HubArgument) -> HubModel:
    tv = _import("torchvision", arg)
    models = tv.models
    if arg.name not in models.list_models():
        raise ValueError(f"model: torchvision has no model {arg.name!r} "
                         "(torchvision.models.list_models() lists them)")
    try:
        default = models.get_model_weights(arg.name).DEFAULT
    except Exception:  # an architecture without published weights
        default = None
    if arg.weights == "pretrained":
        if default is None:
            _no_weights(arg, [])
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(
            urlparse(default.url).path)
        if not path.is_file():
            _no_weights(arg, [str(path)])
        net = models.get_model(arg.name, weights=default)  # read from the cache, no download
    else:
        net = models.get_model(arg.name, weights=None)
        if arg.weights != "none":
            _load_file(net, arg)
    if default is not None:
        t = default.transforms()
        interp = getattr(t.interpolation, "value", str(t.interpolation))
        pre = Preprocess((t.crop_size[0],) * 2, t.resize_size[0], interp, t.mean, t.std)
    else:  # ImageNet's usual eval transform
        pre = Preprocess((224, 224), 256, "bilinear", **_IMAGENET)
    return HubModel(net.eval(), pre, _meta(arg))


def _meta(arg: HubArgument) -> dict:
    return {"name": arg.short, "hub": arg.hub, "model": arg.name, "weights": arg.weights,
            "identity": arg.identity}


def load_hub_model(item: str | HubArgument) -> HubModel:
    """Build the model a hub argument names (see the module docstring), in eval mode."""
    arg = item if isinstance(item, HubArgument) else parse_hub_argument(item)
    return _load_torchvision(arg) if arg.hub == "torchvision" else _load_timm(arg)
