"""Model arguments of the command line: checkpoints, zoo entries and Python entry points.

Each item names one or more models:

* ``path/to/model.pt`` — a safe checkpoint (:func:`~transferability.models.save_checkpoint`);
* ``demo`` or ``zoo.yaml`` — every model of a zoo spec (built, or loaded from the cache);
  ``SPEC:NAME`` — one model of it (``demo:cnn-k5``);
* ``py:MODULE:FUNCTION`` or ``py:path/to/file.py:FUNCTION`` — a function of yours that
  returns any ``nn.Module`` (a torchvision, timm or paper-code model, weights loaded);
* ``timm:NAME``, ``torchvision:NAME``, ``hf-hub:ORG/NAME``, optionally
  ``?weights=none|FILE`` — a hub model by name with its preprocessing attached
  (:mod:`transferability.models.hub`; nothing is downloaded).

Models are identified by what names them — the checkpoint's resolved path, the spec and
entry, the entry point — never by a name inside a file, so two different checkpoints are
never merged. Every model is put on the ``device`` given (the command's ``--device``,
resolved once), so user models and zoo models mix. Display names are short (the model's
name, the function's name) and are disambiguated with the item as given whenever two
different models would share one. A model listed twice is used once, with a warning.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ._validation import NAME_PATTERN
from .devices import place, resolve_device
from .models import load_checkpoint
from .models.hub import HUBS, import_hub, load_hub_model, parse_hub_argument

__all__ = ["load_models", "resolve_models", "load_entry_point", "check_fit"]

log = logging.getLogger("transferability")


def load_entry_point(item: str) -> nn.Module:
    """Call ``FUNCTION`` of ``py:MODULE:FUNCTION`` (or ``py:FILE.py:FUNCTION``); it must
    return an ``nn.Module``."""
    target, sep, func = item.removeprefix("py:").rpartition(":")
    if not sep or not target or not func.isidentifier():
        raise ValueError(f"model: {item!r} should read py:MODULE:FUNCTION or "
                         "py:FILE.py:FUNCTION")
    try:
        if target.endswith(".py"):
            if not Path(target).is_file():
                raise ValueError(f"model: no such file {target!r} in {item!r}")
            spec = importlib.util.spec_from_file_location(Path(target).stem, target)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        model = getattr(module, func)()
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"model: {item!r} failed: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: {item!r} returned {type(model).__name__}, not a "
                         "torch.nn.Module")
    return model.eval()


def _is_spec(spec: str) -> bool:
    return spec == "demo" or spec.endswith((".yaml", ".yml"))


def _expand(item: str, cache_dir, zoos: dict, device=None) -> list[tuple[str, str, str, object]]:
    """``(identity, short name, long name, loader)`` for every model ``item`` names."""
    from .zoo import build_zoo, load_spec

    if not isinstance(item, str) or not item or "\0" in item:
        raise ValueError(f"sources: {item!r} is not a model argument")
    if item.startswith("py:"):
        short = item.rpartition(":")[2]
        return [(item, short, item, lambda: load_entry_point(item))]
    if item.partition(":")[0] in HUBS:  # checked, and its package imported, before any work
        arg = parse_hub_argument(item)
        import_hub(arg)
        return [(arg.identity, arg.short, item, lambda: load_hub_model(arg))]
    path = Path(item)
    try:
        is_file = path.suffix not in (".yaml", ".yml") and path.is_file()
    except OSError:
        raise ValueError(f"sources: cannot read {item[:200]!r}") from None
    if is_file:
        model = load_checkpoint(path)
        name = model.meta.get("name")
        short = name if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else path.stem
        return [(f"file:{path.resolve()}", short, item, lambda: model)]
    spec, sep, name = item.rpartition(":")
    if not sep or not _is_spec(spec):
        spec, name = item, None
    if not _is_spec(spec):
        raise ValueError(f"sources: {item!r} is not a checkpoint file, a zoo spec ('demo', "
                         "a .yaml file, SPEC:NAME), a py:MODULE:FUNCTION entry point or a hub "
                         "model (timm:NAME, torchvision:NAME, hf-hub:ORG/NAME)")
    key = spec if spec == "demo" else str(Path(spec).resolve())
    if name is not None:  # check the name before training anything, then train only it
        names = [e.name for e in load_spec(spec)]
        if name not in names:
            raise ValueError(f"sources: no model {name!r} in {spec}; it has {names}")
    if (key, name) not in zoos:
        zoos[key, name] = build_zoo(spec, cache_dir, only=None if name is None else [name],
                                    device=device)
    zoo = zoos[key, name]
    names = list(zoo) if name is None else [name]  # (not the entries it starts from)
    return [(f"spec:{key}:{n}", n, f"{spec}:{n}", lambda n=n, zoo=zoo: zoo[n]) for n in names]


def resolve_models(*groups: Sequence[str], cache_dir=None,
                   names: Sequence[str] | None = None,
                   device=None) -> list[dict[str, nn.Module]]:
    """One ``{display name: model}`` per group of items (e.g. surrogates and victims).

    The same model in two groups is the same object under the same name, so it can be
    recognised (a white-box cell of a transfer matrix). ``names`` label the groups in
    messages (default ``sources``).
    """
    device = None if device is None else resolve_device(device)
    labels = list(names or [f"sources{'' if len(groups) == 1 else i}" for i in range(len(groups))])
    zoos: dict = {}
    found: list[list[tuple[str, str, str, object]]] = []
    for label, items in zip(labels, groups, strict=True):
        if isinstance(items, str) or not items:
            raise ValueError(f"{label}: expected one or more model arguments")
        group, seen = [], set()
        for item in items:
            for identity, short, long, loader in _expand(item, cache_dir, zoos, device):
                if identity in seen:
                    log.warning("%s: %s is listed more than once; using it once", label, long)
                    continue
                seen.add(identity)
                group.append((identity, short, long, loader))
        found.append(group)
    identities: dict[str, tuple[str, str, object]] = {}
    for group in found:
        for identity, short, long, loader in group:
            identities.setdefault(identity, (short, long, loader))
    owners: dict[str, set[str]] = {}
    for identity, (short, _, _) in identities.items():
        owners.setdefault(short, set()).add(identity)
    display, models = {}, {}
    for identity, (short, long, loader) in identities.items():
        name = short if len(owners[short]) == 1 and NAME_PATTERN.fullmatch(short) else long
        if name in display.values():  # two different models given with the same text
            name = f"{name}#{sum(n.startswith(name) for n in display.values()) + 1}"
        display[identity] = name
        model = loader()
        models[identity] = model if device is None else place(model, device, name)
    return [{display[i]: models[i] for i, *_ in group} for group in found]


def load_models(items: Sequence[str], cache_dir=None, device=None) -> dict[str, nn.Module]:
    """Resolve model arguments into ``{display name: model}`` (see the module docstring),
    placed on ``device`` (None: where they load)."""
    return resolve_models(items, cache_dir=cache_dir, device=device)[0]


def check_fit(models: dict[str, nn.Module], images: torch.Tensor, option: str, *,
              data: str = "the data", num_classes: int | None = None,
              features: bool = False, layer: str | None = None,
              layer_input: bool = False) -> None:
    """One image through every model before any job runs: a model that does not take the
    data's images (or whose ``layer`` features cannot be read, with ``features``), or that
    has fewer outputs than the data's ``num_classes``, is a one-line ``ValueError`` naming
    ``option``, the model and the image shape (the forward pass's own words say the
    model's side)."""
    from .features import extract, model_inputs, run_model
    from .utils import evaluating

    x = images[:1]
    shape = "×".join(map(str, x.shape[1:]))
    for name, model in models.items():
        try:
            if features or layer is not None:
                logits = extract(model, x, layer=layer, layer_input=layer_input, name=name,
                                 batch_size=1).logits
            else:
                with evaluating(model), torch.no_grad():
                    logits = run_model(model, model_inputs(model, x), name)
        except ValueError as exc:
            reason = str(exc).splitlines()[0].split(f" do not fit {name}: ")[-1]
            raise ValueError(f"{option}: {name} does not fit the images of {data} "
                             f"(1×{shape}): {reason}") from None
        if logits.ndim != 2 or (num_classes is not None and logits.shape[1] < num_classes):
            want = "N×C logits" + ("" if num_classes is None else
                                   f" with C ≥ {num_classes}, the data's classes")
            raise ValueError(f"{option}: {name} gives outputs shaped {tuple(logits.shape)} on "
                             f"the images of {data} (1×{shape}); expected {want}")
