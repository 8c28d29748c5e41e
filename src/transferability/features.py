"""Features and logits of any ``nn.Module`` from one forward pass, and batched prediction.

The penultimate features are, by default, the **input of the last** ``nn.Linear`` **that the
forward pass calls**, captured by a forward pre-hook during the same pass that yields the
logits: no model surgery, no second forward. That covers the library's ``Classifier``,
torchvision (``fc``), timm (``head``) and VGG/AlexNet-style ``classifier`` stacks alike.
``layer="classifier.1"`` (any name from ``model.named_modules()``) takes that module's
output instead, ``layer_input=True`` its input. A model with a ``feature_layer`` attribute
(a hub model: the output of timm's ``forward_head(pre_logits=True)``) names its own
default. Every consumer (probes, estimators, the
zoo's feature cache, transferred models) goes through :func:`feature_tap`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from ._results import Result
from ._validation import check_images, check_int, model_device, model_dtype
from .devices import forward_precision
from .models.ensemble import Ensemble
from .utils import evaluating

__all__ = ["Outputs", "feature_tap", "forward_with_features", "extract", "predict",
           "check_finite_outputs", "model_inputs", "run_model", "outputs_fn", "WithHead",
           "with_head"]


@contextlib.contextmanager
def feature_tap(model: nn.Module, layer: str | None = None, layer_input: bool = False):
    """Hooks that store the features of each forward pass of ``model`` in the yielded dict
    under ``"features"`` (see the module docstring); removed on exit."""
    store: dict[str, torch.Tensor] = {}
    if layer is None and not layer_input and getattr(model, "feature_layer", None):
        layer = model.feature_layer  # a hub model's classifier input (forward_head)
    if layer is None and isinstance(model, Ensemble):
        raise ValueError("layer: an Ensemble has no single penultimate layer; name a member's "
                         "module (e.g. layer='members.0.head', layer_input=True)")
    if layer is None and layer_input:
        raise ValueError("layer_input: takes the input of the module named by layer=; name one")
    if layer is None:
        targets = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not targets:
            raise ValueError(f"layer: {type(model).__name__} has no nn.Linear, so its "
                             "penultimate features are undefined; pass layer=NAME (any name "
                             "from model.named_modules())")
        handles = [m.register_forward_pre_hook(lambda m, args: store.update(features=args[0]))
                   for m in targets]
    else:
        modules = dict(model.named_modules())
        if not isinstance(layer, str) or layer not in modules or not layer:
            shown = ", ".join(n for n in list(modules)[1:21] if n)
            raise ValueError(f"layer: {layer!r} is not a module of {type(model).__name__}; "
                             f"names include: {shown}")

        def hook(module, args, output):
            store["features"] = args[0] if layer_input else output

        handles = [modules[layer].register_forward_hook(hook)]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def forward_with_features(model: nn.Module, x: torch.Tensor, *, layer: str | None = None,
                          layer_input: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features N×D, logits)`` of one forward pass (gradients flow through both)."""
    with feature_tap(model, layer, layer_input) as store:
        logits = model(x)
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"model: expected the forward pass to return a tensor of logits, got "
                         f"{type(logits).__name__}")
    if "features" not in store:
        raise ValueError(f"layer: the forward pass of {type(model).__name__} never called "
                         f"{'an nn.Linear' if layer is None else repr(layer)}; pass layer=NAME")
    features = store["features"]
    if isinstance(features, tuple | list):
        features = features[0]
    return features.flatten(1), logits


def check_finite_outputs(out: torch.Tensor, name: str) -> torch.Tensor:
    """Refuse NaN or infinite model outputs: every number computed from them would be wrong."""
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).any(dim=-1).sum()) if out.ndim else 1
        raise ValueError(f"{name}: outputs contain NaN or inf for {bad} of {len(out)} inputs; "
                         "check the model's weights and inputs")
    return out


@dataclass(frozen=True, eq=False)
class Outputs(Result):
    """What a model produces on a dataset, on the CPU, in dataset order."""

    features: torch.Tensor  # N × D penultimate features
    logits: torch.Tensor  # N × C
    labels: torch.Tensor  # N target labels (those of the dataset)

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(dim=1)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The three tensors by name (what the zoo's feature cache stores)."""
        return {"features": self.features, "logits": self.logits, "labels": self.labels}


def model_inputs(model: nn.Module, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Checked images (N×C×H×W in [0, 1]) on the model's device and in its dtype, so float64
    input works with a float32 model."""
    return check_images(x, name).to(model_device(model), model_dtype(model))


def run_model(model: nn.Module, x: torch.Tensor, name: str = "model", fn=None,
              precision: str | None = None):
    """``fn(x)`` (default ``model(x)``) with one-line errors: images that do not fit the
    model, outputs that are not one tensor. Without gradients it runs at ``precision``
    (default: the current one, :func:`~transferability.devices.forward_precision`). Every
    caller that runs a model on user input goes through here."""
    try:
        with forward_precision(x.device, precision):
            out = (fn or model)(x)
    except RuntimeError as exc:
        raise ValueError(f"x: images shaped {tuple(x.shape[1:])} do not fit {name}: "
                         f"{str(exc).splitlines()[0]}") from None
    if fn is None and not isinstance(out, torch.Tensor):
        raise ValueError(f"{name}: expected the forward pass to return a tensor of logits, got "
                         f"{type(out).__name__}")
    return out


def _stream(model: nn.Module, x, batch_size: int, workers: int | None):
    """Batches of images ``x`` (a tensor or any dataset) on the model's device, in its dtype
    and memory layout (:func:`~transferability.data.stream`)."""
    from .data.loader import stream

    batch_size = check_int(batch_size, "batch_size")
    first = next((p for p in model.parameters() if p.ndim == 4), None)
    channels_last = first is not None and not first.is_contiguous() and \
        first.is_contiguous(memory_format=torch.channels_last)
    return stream(x, model_device(model), batch_size=batch_size, workers=workers,
                  dtype=model_dtype(model), channels_last=channels_last)


@torch.no_grad()
def extract(model: nn.Module, x, y: torch.Tensor | None = None, *,
            layer: str | None = None, layer_input: bool = False, batch_size: int = 256,
            name: str = "model", precision: str | None = None,
            workers: int | None = None) -> Outputs:
    """Features and logits of ``model`` (eval mode, restored) on images ``x``, in batches.

    ``x`` is an image tensor, an ``ImageDataset`` or any ``Dataset`` of ``(image, label)``
    items (then its labels are kept unless ``y`` is given), streamed to the model's device
    by :func:`~transferability.data.stream` with ``workers`` reader processes (default:
    none on a CPU, up to 8 on a GPU). Forward passes run at ``precision`` (autocast;
    default the current one); the outputs come back as float32 on the CPU.
    """
    feats, logits, labels = [], [], []
    with evaluating(model):
        for xb, yb in _stream(model, x, batch_size, workers):
            f, out = run_model(model, xb, name,
                               lambda b: forward_with_features(model, b, layer=layer,
                                                               layer_input=layer_input),
                               precision)
            feats.append(f.float())
            logits.append(out.float())
            if yb is not None:
                labels.append(yb)
    if not feats:
        raise ValueError("x: is empty; expected at least one image")
    features = check_finite_outputs(torch.cat(feats), f"{name} features").cpu()
    logits = check_finite_outputs(torch.cat(logits), name).cpu()
    if y is not None:
        labels = torch.as_tensor(y).cpu().long()
    else:
        labels = torch.cat(labels).cpu().long() if labels else torch.empty(0, dtype=torch.long)
    return Outputs(features, logits, labels)


@torch.no_grad()
def predict(model: nn.Module, x, *, batch_size: int = 256, name: str = "model",
            precision: str | None = None, workers: int | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``x`` (as for :func:`extract`) in batches, in eval mode
    (restored), on the model's device; checked to be N × C and finite."""
    with evaluating(model):
        outs = [run_model(model, xb, name, precision=precision)
                for xb, _ in _stream(model, x, batch_size, workers)]
    if not outs:
        raise ValueError("x: is empty; expected at least one image")
    out = torch.cat(outs)
    if out.ndim != 2:
        raise ValueError(f"{name}: expected outputs shaped N×C, got shape {tuple(out.shape)}")
    if out.dtype != model_dtype(model):  # autocast: logits back in the model's dtype
        out = out.to(model_dtype(model))
    return check_finite_outputs(out, name)


def outputs_fn(layer: str | None = None, layer_input: bool = False):
    """``(name, model, data) -> Outputs``: :func:`extract` with these features, the default
    of the studies (a zoo's cached extraction is the other)."""
    def outputs(name: str, model: nn.Module, data) -> Outputs:
        return extract(model, data.x, data.y, layer=layer, layer_input=layer_input, name=name)
    return outputs


class WithHead(nn.Module):
    """A model whose features (see :func:`feature_tap`) feed a new linear ``head``: the
    transferred model of a linear probe. The source is shared, never modified."""

    def __init__(self, source: nn.Module, head: nn.Linear, *, layer: str | None = None,
                 layer_input: bool = False):
        super().__init__()
        self.source, self.head = source, head
        self.layer, self.layer_input = layer, layer_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, _ = forward_with_features(self.source, x, layer=self.layer,
                                            layer_input=self.layer_input)
        return self.head(features)


def with_head(model: nn.Module, head: nn.Linear, *, layer: str | None = None,
              layer_input: bool = False) -> WithHead:
    """``model`` with ``head`` on its features (e.g. a probe's head), on the model's device."""
    if not isinstance(head, nn.Linear):
        raise ValueError(f"head: expected an nn.Linear, got {type(head).__name__}")
    return WithHead(model, head.to(model_device(model)), layer=layer, layer_input=layer_input)
