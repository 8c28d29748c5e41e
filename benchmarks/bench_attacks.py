"""PGD-10 throughput (images/s): the library against the straightforward loop.

The straightforward loop is the one found in tutorials and research scripts: the model's
parameters keep ``requires_grad`` (so backward also computes weight gradients), a mean
cross-entropy, ``loss.backward()``, ``x.grad.sign()``, clip. torchattacks' PGD joins the table
when it is installed. Without a random start all of them must give the same ``x_adv``.
Timings are the best of a few interleaved repeats, on the ``cnn`` and ``resnet`` of the zoo,
on the CPU and, when there is one, on the GPU (batch 256, timed after a synchronize).
It also counts the aten operators per step of the library's PGD and APGD-CE and of
torchattacks' PGD (torch.profiler): on a small model on a GPU a step costs its launches.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from transferability.attacks import APGD, PGD
from transferability.models import create_model

BATCH, N_BATCHES, REPEATS, STEPS = 128, 3, 3, 10
EPS, ALPHA = 0.3, 0.03


def straightforward_pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=STEPS):
    """The typical hand-written L∞ PGD without random start (BIM)."""
    model.eval()
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        model.zero_grad()
        loss.backward()
        x_adv = x_adv.detach() + alpha * x_adv.grad.sign()
        delta = torch.clamp(x_adv - x, -eps, eps)
        x_adv = torch.clamp(x + delta, 0, 1).detach()
    return x_adv


def masking_check_share(model, x, y, calls: int = 500) -> float:
    """What the gradient-masking check (confidence on the clean logits, then one pass over
    the first gradient) costs, as a share of one PGD call. Timed directly: side-by-side
    columns differ by more than this from run to run."""
    attack = PGD(model, EPS, ALPHA, STEPS, random_start=False)
    with torch.no_grad():
        logits = model(x)
    grad = torch.randn_like(x)

    def check():
        attack._confident = logits.softmax(dim=1).amax(dim=1) > 0.99
        attack._check_masking(grad)

    check()
    start = time.perf_counter()
    for _ in range(calls):
        check()
    per_check = (time.perf_counter() - start) / calls
    attack(x, y)
    start = time.perf_counter()
    for _ in range(3):
        attack(x, y)
    return per_check / ((time.perf_counter() - start) / 3)


def ops_per_step(make: Callable[[int], Callable], x, y) -> tuple[float, int]:
    """``(aten ops per step, ops of the rest of a call)`` of the attack ``make(steps)``,
    counted by torch.profiler (the operators called from Python, each a kernel launch or
    a view; on a small model on a GPU, launches are what a step costs): the difference
    between calls of 11 and 1 steps."""
    from torch.profiler import ProfilerActivity, profile

    counts = []
    for steps in (1, 11):
        attack = make(steps)
        attack(x, y)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            attack(x, y)
        counts.append(sum(1 for e in prof.events() if e.name.startswith("aten::") and not (
            e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::"))))
    per_step = (counts[1] - counts[0]) / 10
    return per_step, round(counts[0] - per_step)


def _methods(model) -> dict[str, Callable]:
    ours = PGD(model, EPS, ALPHA, STEPS, random_start=False)
    methods = {"library": ours, "straightforward": lambda x, y: straightforward_pgd(model, x, y)}
    try:
        import torchattacks
    except ImportError:
        pass
    else:
        methods["torchattacks"] = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS,
                                                   random_start=False)
    return methods


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable, data) -> tuple[float, list[torch.Tensor]]:
    device = data[0][0].device
    _sync(device)
    start = time.perf_counter()
    out = [fn(x, y) for x, y in data]
    _sync(device)
    return time.perf_counter() - start, out


def main() -> None:
    run(torch.device("cpu"), BATCH)
    if torch.cuda.is_available():
        run(torch.device("cuda"), 256)


def run(device: torch.device, batch: int) -> None:
    torch.manual_seed(0)
    data = [(torch.rand(batch, 1, 28, 28).to(device), torch.randint(0, 10, (batch,)).to(device))
            for _ in range(N_BATCHES)]
    images = batch * N_BATCHES
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{torch.get_num_threads()} thread(s), CPU"
    print(f"\nPGD-{STEPS}, L∞ ε={EPS}, α={ALPHA}, no random start; batch {batch} of 28×28×1, "
          f"{N_BATCHES} batches, best of {REPEATS}; torch {torch.__version__}, {where}")
    for arch in ("cnn", "resnet"):
        model = create_model(arch, num_classes=10).to(device).eval()
        methods = _methods(model)
        best = dict.fromkeys(methods, float("inf"))
        outputs = {}
        for fn in methods.values():  # warm-up
            fn(*data[0])
        for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all alike
            for name, fn in methods.items():
                seconds, outputs[name] = _time(fn, data)
                best[name] = min(best[name], seconds)
        base = best["straightforward"]
        print(f"\n{arch} ({device.type}):")
        for name in methods:
            diff = max((a - b).abs().max().item()
                       for a, b in zip(outputs[name], outputs["straightforward"], strict=True))
            print(f"  {name:16s} {images / best[name]:8.0f} img/s   "
                  f"speed-up vs straightforward {base / best[name]:5.2f}×   "
                  f"max|x_adv − straightforward| = {diff:.2g}")
        small, m = (data[0][0][:16], data[0][1][:16]), model
        ops = {"library": ops_per_step(lambda k, m=m: PGD(m, EPS, ALPHA, k, random_start=False),
                                       *small),
               "library APGD-CE": ops_per_step(lambda k, m=m: APGD(m, EPS, k, seed=0), *small)}
        if "torchattacks" in methods:
            import torchattacks
            ops["torchattacks"] = ops_per_step(lambda k, m=m: torchattacks.PGD(
                m, eps=EPS, alpha=ALPHA, steps=k, random_start=False), *small)
        print("  aten ops per step (rest of a call): " + ", ".join(
            f"{k} {v[0]:.0f} ({v[1]})" for k, v in ops.items()))
        share = masking_check_share(model, *data[0])
        print(f"  gradient-masking check: {share:.3%} of one PGD-{STEPS} call (goal < 2%)")
        if "torchattacks" in methods:
            print(f"  library vs torchattacks: {best['torchattacks'] / best['library']:.2f}× "
                  "(> 1: the library is faster)")
        else:
            print("  torchattacks     not installed, column skipped")


if __name__ == "__main__":
    main()
