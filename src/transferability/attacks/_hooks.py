"""Forward hooks that change how gradients flow back through activations, leaving every
forward value unchanged (SGM, LinBP). Installed for one attack call and removed after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)


def residual_blocks(model: nn.Module, names: Sequence[str] | None = None,
                    option: str = "blocks") -> dict[str, nn.Module]:
    """The residual blocks of ``model``: the modules named in ``names``, or else every
    outermost module whose class name says Block or Bottleneck (torchvision's and timm's
    ResNets, the bundled ``resnet``) and that holds an activation."""
    modules = dict(model.named_modules())
    if names is not None:
        if isinstance(names, str):
            names = [names]
        missing = [n for n in names if n not in modules or not n]
        if missing:
            raise ValueError(f"{option}: {missing[0]!r} is not a module of "
                             f"{type(model).__name__}")
        return {n: modules[n] for n in names}
    found: dict[str, nn.Module] = {}
    for name, module in modules.items():
        kind = type(module).__name__.lower()
        if (name and ("block" in kind or "bottleneck" in kind)
                and not any(name.startswith(f + ".") for f in found)
                and any(isinstance(m, ACTIVATIONS) for m in module.modules())):
            found[name] = module
    if not found:
        raise ValueError(f"{option}: {type(model).__name__} has no residual blocks (no module "
                         "whose class is a Block or Bottleneck); name them with "
                         f"{option}=[...] or use another attack")
    return found


def activations(blocks: Iterable[nn.Module]) -> list[nn.Module]:
    """The activation modules inside ``blocks``, each once."""
    seen: dict[int, nn.Module] = {}
    for block in blocks:
        for m in block.modules():
            if isinstance(m, ACTIVATIONS):
                seen.setdefault(id(m), m)
    return list(seen.values())


@contextlib.contextmanager
def scaled_backward(modules: Iterable[nn.Module], scale: float):
    """Multiply the gradient through each call of ``modules`` by ``scale``."""
    def hook(module, args, out):
        frozen = out.detach()
        return frozen + scale * (out - frozen)
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def linear_backward(modules: Iterable[nn.Module]):
    """Let the gradient pass each call of ``modules`` as if it were the identity."""
    inputs: dict[int, torch.Tensor] = {}

    def pre(module, args):
        inputs[id(module)] = args[0]
        return (args[0].clone(),)  # an in-place activation must not overwrite the input

    def hook(module, args, out):
        z = inputs.pop(id(module))
        return out.detach() + (z - z.detach())
    handles = [h for m in modules for h in (m.register_forward_pre_hook(pre),
                                           m.register_forward_hook(hook))]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
