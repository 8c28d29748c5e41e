"""α1/α2 of one model pair on 1,000 images: the batched library against a per-sample loop.

The per-sample reference processes one image at a time, as the authors' code does: attack
it on each model, compute its output changes Δ, and add its outer product Δ̂_{g→g}Δ̂_{g→f}ᵀ
to running sums in a Python loop. Both sides run the same deterministic attack (L∞ PGD on
the predicted label, ε = 0.1, step 0.2ε, no random start, 10 steps instead of the paper's
50 to keep the benchmark short), so their values must agree to 1e-4.

Two pairs of untrained zoo models with different seeds: the demo's ``cnn`` (convolutions,
compute-bound on one CPU thread, where batching gains little) and the ``mlp`` (dense
layers, where one image at a time wastes most of the work).
"""

from __future__ import annotations

import time

import torch

from transferability.adversarial import alpha, alpha_attack
from transferability.models import create_model

N, STEPS, EPS = 1000, 10, 0.1


def per_sample_alpha(from_model, to_model, x, make_attack) -> tuple[float, float, float]:
    """α1, α2², α12² one sample at a time, outer products accumulated in a Python loop."""
    attack_g, attack_f = make_attack(from_model), make_attack(to_model)
    a1_sum, m2, m12 = 0.0, 0.0, 0.0
    for i in range(len(x)):
        xi = x[i:i + 1]
        x_g, x_f = attack_g(xi), attack_f(xi)
        with torch.no_grad():
            g0, f0 = from_model(xi), to_model(xi)
            d_gg = (from_model(x_g) - g0)[0].double()
            d_gf = (to_model(x_g) - f0)[0].double()
            d_ff = (to_model(x_f) - f0)[0].double()
        a1 = d_gf.norm() / d_ff.norm()
        outer = torch.outer(d_gg / d_gg.norm(), d_gf / d_gf.norm())
        a1_sum, m2, m12 = a1_sum + a1, m2 + outer, m12 + a1 * outer
    n = len(x)
    return float(a1_sum / n), float((m2 / n).square().sum()), float((m12 / n).square().sum())


def main() -> None:
    x = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    make_attack = alpha_attack("pgd", {"eps": EPS, "steps": STEPS, "random_start": False})
    print(f"α on {N} images 28×28, PGD-{STEPS} L∞ ε={EPS} step {0.2 * EPS:g}, no random start; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    for arch in ("cnn", "mlp"):
        torch.manual_seed(1)
        g, f = create_model(arch, 10).eval(), create_model(arch, 10).eval()
        alpha(g, f, x[:8], attack=make_attack)  # warm-up
        per_sample_alpha(g, f, x[:8], make_attack)
        start = time.perf_counter()
        ours = alpha(g, f, x, attack=make_attack)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        ref = per_sample_alpha(g, f, x, make_attack)
        t_ref = time.perf_counter() - start
        lib = (ours.alpha1, ours.alpha2_squared, ours.alpha12_squared)
        diff = max(abs(a - b) for a, b in zip(lib, ref, strict=True))
        print(f"\n{arch} pair:")
        print(f"  library (batched)  α1 = {lib[0]:.6f}  α2² = {lib[1]:.6f}  α12² = {lib[2]:.6f}"
              f"   {t_ours:6.1f} s")
        print(f"  per-sample loop    α1 = {ref[0]:.6f}  α2² = {ref[1]:.6f}  α12² = {ref[2]:.6f}"
              f"   {t_ref:6.1f} s")
        print(f"  max |difference| = {diff:.2g} ({'OK' if diff <= 1e-4 else 'ABOVE'} 1e-4);  "
              f"speed-up {t_ref / t_ours:.1f}× (goal ≥ 20×)")


if __name__ == "__main__":
    main()
