"""Hessian-vector products (ms per product): the library against the straightforward ones.

The straightforward HVP is the one research scripts write: one full-batch double backprop,
``g = grad(L, w, create_graph=True)`` then ``grad(g·v, w)``; ``torch.func``'s
forward-over-reverse ``jvp(grad(L), w, v)`` joins the table when the model supports it.
The library's product is batched (memory bounded by ``batch_size``) and must agree with
them to rounding. Then one ``hessian_top``, ``hessian_trace`` and ``random_weight`` call.
Model: the zoo ``cnn``, 256 random 28×28 images; timings are the best of interleaved repeats.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp

from transferability.models import create_model
from transferability.sharpness import hessian_vector_product, sharpness

N, REPEATS, TRACE_SAMPLES = 256, 3, 20


def straightforward_hvp(model, x, y, vector):
    """The typical script: full batch, g = ∇L with a graph, then ∇(g·v)."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vector, strict=True))
    return list(torch.autograd.grad(dot, params))


def func_hvp(model, x, y, vector):
    """Forward-over-reverse with torch.func: jvp of the gradient along v."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}

    def loss(ps):
        return F.cross_entropy(functional_call(model, ps, (x,)), y)

    _, out = jvp(grad(loss), (params,), (dict(zip(names, vector, strict=True)),))
    return [out[n] for n in names]


def _best(fn: Callable, repeats: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    torch.manual_seed(0)
    model = create_model("cnn", num_classes=10).eval()
    x, y = torch.rand(N, 1, 28, 28), torch.randint(0, 10, (N,))
    vector = [torch.randn_like(p) for p in model.parameters()]
    count = sum(p.numel() for p in model.parameters())
    print(f"Hessian-vector product of the mean cross-entropy, zoo cnn ({count:,} parameters), "
          f"{N} images 28×28×1, float32, best of {REPEATS}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), CPU")
    methods = {
        "library b=256": lambda: hessian_vector_product(model, x, y, vector, batch_size=256),
        "library b=64": lambda: hessian_vector_product(model, x, y, vector, batch_size=64),
        "straightforward": lambda: straightforward_hvp(model, x, y, vector),
        "torch.func jvp": lambda: func_hvp(model, x, y, vector),
    }
    for name, fn in list(methods.items()):  # warm-up; drop what the model does not support
        try:
            fn()
        except (RuntimeError, NotImplementedError) as exc:
            print(f"  {name:16s} skipped: {str(exc).splitlines()[0][:80]}")
            del methods[name]
    best, outputs = dict.fromkeys(methods, float("inf")), {}
    for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all alike
        for name, fn in methods.items():
            seconds, outputs[name] = _best(fn)
            best[name] = min(best[name], seconds)
    base, reference = best["straightforward"], outputs["straightforward"]
    scale = max(r.abs().max().item() for r in reference)
    for name in methods:
        diff = max((a - b).abs().max().item()
                   for a, b in zip(outputs[name], reference, strict=True))
        print(f"  {name:16s} {best[name] * 1e3:8.1f} ms   speed-up vs straightforward "
              f"{base / best[name]:5.2f}×   max|Hv − straightforward| = {diff:.2g} "
              f"(max|Hv| = {scale:.2g})")

    print("\nsharpness measures (library defaults unless stated):")
    for measure, options in (("hessian_top", {}), ("hessian_trace", {"samples": TRACE_SAMPLES}),
                             ("random_weight", {})):
        seconds, r = _best(lambda m=measure, o=options: sharpness(model, x, y, m, **o))
        detail = (f"{r.iterations} power iterations, converged={r.converged}"
                  if r.iterations is not None else f"{r.samples} draws, ± {r.stderr:.3g}")
        label = f"{measure} ({', '.join(f'{k}={v}' for k, v in options.items()) or 'defaults'})"
        print(f"  {label:32s} {seconds:7.2f} s   value {r.value:10.4g}   {detail}   "
              f"({seconds / (r.iterations or r.samples) * 1e3:.0f} ms per step)")


if __name__ == "__main__":
    main()
