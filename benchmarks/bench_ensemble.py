"""Ensemble cost: K = 8 zoo ``cnn`` members against K single-model passes, side by side.

Goal: evaluating a K-member :class:`~transferability.models.Ensemble` (Liu et al. 2017)
costs at most 1.1× the sum of K single-model passes, for the forward pass and for the
forward + input gradient of an attack step. ``hand-written`` is the straightforward
ensemble, ``torch.stack([m(x) for m in members]).mean(0)``. The ``torch.vmap`` column
batches the members with ``torch.func.stack_module_state`` (restacked per call, as
correctness requires): the ensemble loops instead because that column is slower on CPU.
Last, LGV-style PGD-10 with ``sample=1`` (one member per step, Gubri et al. 2022) against
PGD-10 on one member. Times are the best of a few interleaved rounds of two back-to-back
calls (the second sees its own allocator state, not the previous method's).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state

from transferability.attacks import PGD
from transferability.models import Ensemble, create_model

K, BATCH, REPEATS, INNER, STEPS, EPS = 8, 128, 5, 2, 10, 0.3
GOAL = 1.1


def _members() -> list[torch.nn.Module]:
    out = []
    for seed in range(K):
        torch.manual_seed(seed)
        model = create_model("cnn", num_classes=10).eval()
        out.append(model.requires_grad_(False))  # frozen, as during an attack
    return out


def _vmap_logits(members):
    """Mean logits of same-architecture members through one vmapped functional call."""
    skeleton = copy.deepcopy(members[0]).to("meta")

    def call(params, buffers, x):
        return functional_call(skeleton, (params, buffers), (x,))

    def logits(x):
        params, buffers = stack_module_state(members)
        return torch.vmap(call, in_dims=(0, 0, None))(params, buffers, x).mean(0)
    return logits


def _input_grad(logits_fn: Callable, x, y):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(F.cross_entropy(logits_fn(x), y, reduction="sum"), x)[0]


def _best(methods: dict[str, Callable], *args) -> dict[str, float]:
    for fn in methods.values():  # warm-up
        fn(*args)
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all alike
        for name, fn in methods.items():
            for _ in range(INNER):
                start = time.perf_counter()
                fn(*args)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def _report(title: str, best: dict[str, float], base: str) -> None:
    print(f"\n{title}:")
    for name, seconds in best.items():
        ratio = seconds / best[base]
        note = f"   goal ≤ {GOAL}×: {'met' if ratio <= GOAL else 'MISSED'}" \
            if name == "ensemble" else ""
        print(f"  {name:22s} {seconds * 1e3:8.1f} ms   {ratio:5.2f}× {base}{note}")


def main() -> None:
    members = _members()
    ensemble = Ensemble(members)
    vmapped = _vmap_logits(members)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g)
    print(f"K = {K} zoo cnn members, batch {BATCH} of 1×28×28, best of {REPEATS}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    with torch.no_grad():
        diff = (ensemble(x) - sum(m(x) for m in members) / K).abs().max().item()
        diff_vmap = (vmapped(x) - ensemble(x)).abs().max().item()
    print(f"max|ensemble − mean of members| = {diff:.2g}, max|vmap − ensemble| = {diff_vmap:.2g}")

    def singles(x):
        for m in members:
            m(x)

    def hand_written(x):
        return torch.stack([m(x) for m in members]).mean(0)

    with torch.no_grad():
        forward = _best({"K single forwards": singles, "ensemble": ensemble,
                         "hand-written": hand_written, "vmap (torch.func)": vmapped}, x)
    _report("forward", forward, "K single forwards")

    def single_grads(x, y):
        for m in members:
            _input_grad(m, x, y)

    step = PGD(ensemble, EPS)  # what one attack step costs: Attack.gradient
    _report("forward + input gradient (one attack step)",
            _best({"K single gradients": single_grads, "ensemble": step.gradient,
                   "hand-written": lambda x, y: _input_grad(hand_written, x, y),
                   "vmap (torch.func)": lambda x, y: _input_grad(vmapped, x, y)}, x, y),
            "K single gradients")

    lgv = PGD(Ensemble(members, sample=1), EPS, steps=STEPS, random_start=False)
    one = PGD(members[0], EPS, steps=STEPS, random_start=False)
    best = _best({"one member": one, "LGV sample=1": lgv}, x, y)
    _report(f"PGD-{STEPS}", best, "one member")
    # Attack.__call__ first runs one clean forward of the whole ensemble (labels, output
    # checks, the gradient-masking check): K - 1 forwards more than on one member.
    clean = forward["ensemble"] * (K - 1) / K
    rest = (best["LGV sample=1"] - clean) / best["one member"]
    print(f"  of which the clean forward of all {K} members: {clean * 1e3:.1f} ms; without it "
          f"LGV costs {rest:.2f}× one member (the per-step sampling itself)")


if __name__ == "__main__":
    main()
