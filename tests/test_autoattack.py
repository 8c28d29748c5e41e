"""APGD, APGD-T, FAB-T, Square and AutoAttack against hand-written references, invariants,
the checks on models built to trip them, and bad input."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linprog, minimize

from transferability.attacks import (
    APGD,
    APGDT,
    FABT,
    PGD,
    AutoAttack,
    EvaluationCheckWarning,
    RobustAccuracy,
    Square,
    benchmark,
    dlr,
    norms,
    robust_accuracy,
)
from transferability.attacks.apgd import checkpoints
from transferability.attacks.fab import project_onto_hyperplane
from transferability.attacks.square import pseudo_gaussian, square_fraction, square_size
from user_models import saturated_linear


def _mlp(classes=4, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, classes)).to(dtype).eval()


def _images(n, dtype=torch.float32, seed=1):
    return torch.rand(n, 2, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _saturated():
    return saturated_linear().eval()


def test_dlr_by_hand():
    z = torch.tensor([[3.0, 1.0, 0.5, -1.0], [0.0, 2.0, 4.0, 1.0]])
    y = torch.tensor([0, 1])
    # untargeted: -(z_y - max_{j≠y} z_j) / (z_π1 - z_π3)
    torch.testing.assert_close(dlr(z, y), torch.tensor([-(3 - 1) / (3 - 0.5),
                                                         -(2 - 4) / (4 - 1)]))
    # targeted: -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2)
    t = torch.tensor([2, 3])
    torch.testing.assert_close(dlr(z, y, t), torch.tensor([-(3 - 0.5) / (3 - (0.5 - 1) / 2),
                                                            -(2 - 1) / (4 - (1 + 0) / 2)]))
    # invariant to shifting and scaling the logits
    torch.testing.assert_close(dlr(5 * z + 7, y), dlr(z, y))
    with pytest.raises(ValueError, match="at least 4 classes"):
        dlr(z[:, :3], y, torch.tensor([1, 0]))


def test_checkpoints_follow_the_paper():
    # p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), p_1 = 0.22, times N = 100
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(50) == [11, 21, 30, 38, 45]


def _reference_apgd(model, x, y, x0, eps, steps):
    """Algorithm 1 of Croce & Hein (2020) for one sample, written out plainly."""
    def f(z):
        z = z.clone().requires_grad_(True)
        loss = F.cross_entropy(model(z), y)
        return loss.item(), torch.autograd.grad(loss, z)[0]

    def proj(z):
        return torch.min(torch.max(z, x - eps), x + eps).clamp(0, 1)

    checks = checkpoints(steps)
    eta, x_k, x_prev = 2 * eps, x0, x0
    loss, g = f(x_k)
    best_loss, best_x, best_g = loss, x_k, g
    adv, halvings = None, 0
    ups, last, reduced, best_at_last = 0, 0, False, best_loss
    for k in range(steps):
        a = 0.75 if k else 1.0
        z = proj(x_k + eta * g.sign())
        x_prev, x_k = x_k, proj(x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev))
        new, g = f(x_k)
        ups += new > loss
        loss = new
        if model(x_k).argmax(1).item() != y.item():
            adv = x_k
        if new > best_loss:
            best_loss, best_x, best_g = new, x_k, g
        if k + 1 in checks:
            reduced = ups <= 0.75 * (k + 1 - last) or (not reduced and best_at_last >= best_loss)
            if reduced:
                eta, halvings = eta / 2, halvings + 1
                x_k, g = best_x, best_g
            ups, last, best_at_last = 0, k + 1, best_loss
    return (best_x if adv is None else adv), halvings


def test_apgd_matches_the_hand_written_algorithm():
    model = _mlp(dtype=torch.float64)
    x = _images(6, torch.float64)
    y = model(x).argmax(1)
    eps, steps, seed = 0.05, 50, 3
    ours = APGD(model, eps, steps, seed=seed)(x, y)
    x0 = norms.random_start(x, eps, "linf", torch.Generator().manual_seed(seed))
    total = 0
    for i in range(len(x)):
        ref, halvings = _reference_apgd(model, x[i:i + 1], y[i:i + 1], x0[i:i + 1], eps, steps)
        torch.testing.assert_close(ours[i:i + 1], ref)
        total += halvings
    assert total > 0  # the step size did halve at checkpoints


def _brute_projection(p, w, b, norm):
    """min ‖d‖ s.t. w·(p + d) = b, 0 ≤ p + d ≤ 1, by a general solver."""
    n = len(p)
    if norm == "linf":  # variables (d, t): minimise t, -t ≤ d_i ≤ t
        c = np.r_[np.zeros(n), 1.0]
        a_ub = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(2 * n), A_eq=np.r_[w, 0.0][None],
                      b_eq=[b - w @ p], bounds=[(-pi, 1 - pi) for pi in p] + [(0, None)])
        return res.x[-1]
    res = minimize(lambda d: d @ d, np.zeros(n), jac=lambda d: 2 * d, method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda d: w @ (p + d) - b}],
                   bounds=[(-pi, 1 - pi) for pi in p], options={"ftol": 1e-12})
    return np.sqrt(res.fun)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_projection_is_the_box_constrained_minimum(norm):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (8, 6))
    w = rng.normal(size=(8, 6))
    b = (w * p).sum(1) + rng.normal(scale=0.4, size=8)
    d = project_onto_hyperplane(*(torch.tensor(a) for a in (p, w, b)), norm).numpy()
    np.testing.assert_allclose((w * (p + d)).sum(1), b, atol=1e-9)
    assert (p + d >= -1e-12).all() and (p + d <= 1 + 1e-12).all()
    size = np.abs(d).max(1) if norm == "linf" else np.linalg.norm(d, axis=1)
    expected = [_brute_projection(p[i], w[i], b[i], norm) for i in range(len(p))]
    np.testing.assert_allclose(size, expected, atol=1e-6)


def test_square_sizes_follow_the_schedule():
    assert [square_fraction(0.8, i) for i in (0, 10, 11, 50, 51, 201, 501, 1001, 8001)] == \
        [0.8, 0.8, 0.4, 0.4, 0.2, 0.1, 0.05, 0.025, 0.8 / 512]
    assert square_size(0.8, 28) == 25  # round(√(0.8·784)) = round(25.04)
    assert square_size(0.8 / 512, 28) == 1 and square_size(0.99, 4) == 3  # within [1, h − 1]
    eta = pseudo_gaussian(5)  # L2's update: opposite-signed rectangles on the two halves
    assert eta.norm().item() == pytest.approx(1.0) and (eta[:2] > 0).all() and (eta[2:] < 0).all()
    assert eta[1, 2] == eta[:2].max() and eta[3, 2] == eta[2:].min()  # peaks at the centres


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_every_attack_stays_in_the_ball_and_the_image(norm):
    model = _mlp()
    x = _images(16)
    y = model(x).argmax(1)
    eps = 0.1 if norm == "linf" else 0.5
    attacks = [APGD(model, eps, 10, norm=norm), APGD(model, eps, 10, norm=norm, loss="dlr"),
               APGDT(model, eps, 10, n_targets=3, norm=norm), FABT(model, eps, 10, norm=norm)]
    attacks.append(Square(model, eps, 50, norm=norm))
    for attack in attacks:
        x_adv = attack(x, y)
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
        assert (size <= eps + 1e-6).all(), type(attack).__name__
        assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_autoattack_is_the_worst_case_and_records_who_broke_each_point():
    model = _mlp()
    x = _images(40)
    y = model(x).argmax(1)
    y[:5] = (y[:5] + 1) % 4  # five points misclassified before any attack
    eps = 0.08
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = robust_accuracy(model, x, y, eps, attack="autoattack", steps=20)
        alone = {"pgd": robust_accuracy(model, x, y, eps, attack="pgd", steps=20).robust_accuracy}
        parts = AutoAttack(model, "linf", eps, steps=20, queries=300).components(4)
        for name, attack in parts.items():  # each component run alone on every point
            alone[name] = (model(attack(x, y)).argmax(1) == y).float().mean().item()
    assert result.attack == "autoattack-standard" and result.clean_correct == 35
    assert result.robust_accuracy <= result.accuracy
    assert all(result.robust_accuracy <= a + 1e-9 for a in alone.values())
    assert result.broken_by[:5] == ["clean"] * 5
    assert result.robust_correct == sum(b is None for b in result.broken_by)
    broken = [b for b in result.broken_by if b not in (None, "clean")]
    assert broken and set(broken) <= set(result.per_attack)
    values = list(result.per_attack.values())
    assert values == sorted(values, reverse=True) and values[-1] == result.robust_accuracy
    assert RobustAccuracy.from_dict(result.to_dict()) == result


def test_saturated_model_pgd_ce_overstates_autoattack_does_not():
    model = _saturated()
    x = torch.rand(48, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ce = PGD(model, 0.3, steps=20)(x, y)
        result = robust_accuracy(model, x, y, 0.3, attack="autoattack")
    assert (model(ce).argmax(1) == y).float().mean() > 0.3  # CE-PGD: a third "robust"
    assert result.accuracy == 1.0 and result.robust_accuracy == 0.0
    assert any("AutoAttack check 'zero gradients'" in str(w.message) for w in caught
               if issubclass(w.category, EvaluationCheckWarning))


class _Noisy(torch.nn.Module):
    """Randomised: dropout on the input even in eval mode."""

    def __init__(self):
        super().__init__()
        self.net = _mlp()

    def forward(self, x):
        return self.net(F.dropout(x, 0.3, training=True))


class _Quantised(torch.nn.Module):
    """Rounds its input: no gradient flows, yet the decision depends on the input."""

    def __init__(self):
        super().__init__()
        self.net = _mlp()

    def forward(self, x):
        return self.net(torch.round(x * 2) / 2)


def _checks(model, x, y, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoAttack(model, "linf", 0.3, steps=5, queries=200, **options)(x, y)
    return {str(w.message).split("'")[1] for w in caught
            if issubclass(w.category, EvaluationCheckWarning)}


def test_the_checks_warn_on_models_built_to_trip_them():
    x = _images(24)
    softmax = torch.nn.Sequential(_mlp(), torch.nn.Softmax(dim=1))
    assert "softmax output" in _checks(softmax, x, softmax(x).argmax(1))
    noisy = _Noisy()
    assert "randomness" in _checks(noisy, x, noisy.net(x).argmax(1))
    quantised = _Quantised()
    found = _checks(quantised, x, quantised(x).argmax(1))
    assert {"zero gradients", "black box beats white box"} <= found
    healthy = _mlp()
    assert _checks(healthy, x, healthy(x).argmax(1)) == set()


def test_rand_version_uses_expectation_over_transformation():
    noisy = _Noisy()
    attack = AutoAttack(noisy, "linf", 0.1, version="rand", steps=3)
    parts = attack.components(4)
    assert list(parts) == ["apgd-ce", "apgd-dlr"] and all(a.eot_iter == 20 for a in parts.values())
    assert list(AutoAttack(noisy, "l2", 0.5).components(10)) == \
        ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert list(AutoAttack(noisy, "linf", 0.1, version="plus").components(10)) == \
        ["apgd-ce", "apgd-dlr", "square", "apgd-t", "fab-t"]
    assert list(AutoAttack(noisy, "linf", 0.1).components(3)) == \
        ["apgd-ce", "apgd-dlr", "fab-t", "square"]


def test_benchmark_counts_and_time():
    model = _mlp()
    x = _images(30)
    y = model(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = benchmark(model, x, y, threat_model="L2", eps=0.2, n_examples=20,
                           batch_size=8, device="cpu")
    assert result.n == 20 and result.clean_correct == 20 and result.seconds > 0
    assert result.robust_correct == round(result.robust_accuracy * 20)
    assert list(result.per_attack) == ["apgd-ce", "apgd-t", "fab-t", "square"]


def test_bad_input():
    model, x = _mlp(), _images(4)
    y = model(x).argmax(1)
    for call, match in [
        (lambda: AutoAttack(model, "linf", 0.0), "eps"),
        (lambda: AutoAttack(model, "linf", -0.1), "eps"),
        (lambda: AutoAttack(model, "linf", 0.1, version="fast"), "version"),
        (lambda: benchmark(model, x, y, eps=0.1, n_examples=5), "n_examples: expected at most"),
        (lambda: benchmark(model, x, y, eps=0.1, threat_model="L1"), "threat_model"),
        (lambda: Square(model, 0.1, queries=0), "queries"),
        (lambda: Square(model, 0.1, targeted=True), "targeted"),
        (lambda: robust_accuracy(model, x, y, 0.1, attack="fgsm"), "attack"),
        (lambda: APGD(model, 0.1, loss="margin"), "loss"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()

    class Pair(torch.nn.Module):
        def forward(self, x):
            return model(x), x

    with pytest.raises(ValueError, match="tensor of logits"):
        AutoAttack(Pair(), "linf", 0.1)(x, y)


def test_robustness_command(tmp_path, capsys):
    import json

    from transferability.cli import main

    model = "py:tests/user_models.py:saturated_linear"
    args = ["robustness", "--model", model, "--dataset", "mnist", "--n-examples", "12",
            "--out", str(tmp_path)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--eps", "3/10"]) == 0
    saved = json.loads((tmp_path / "robustness.json").read_text())
    assert saved["eps"] == pytest.approx(0.3) and saved["n"] == 12
    assert saved["attack"] == "autoattack-standard" and saved["robust_correct"] == 0
    counts = list(saved["class_counts"].values())  # a stratified sample, not the first 12
    assert sum(counts) == 12 and len(counts) == 10 and min(counts) == 1 and max(counts) == 2
    out = capsys.readouterr().out
    assert "robust 0.0000 (0/12)" in out and "12 test images of mnist, per class: 0 " in out
    for eps in ("8/0", "0", "-1", "a/b"):
        with pytest.raises(SystemExit) as exit_:
            main([*args, "--eps", eps])
        assert exit_.value.code == 2
        assert "--eps" in capsys.readouterr().err
    assert main([*args[:5], "--n-examples", "99999", "--eps", "8/255", "--out",
                 str(tmp_path / "no")]) == 2
    assert "--n-examples" in capsys.readouterr().err
    assert not (tmp_path / "no" / "robustness.json").exists()


def test_square_keeps_float64_images_inside_the_exact_ball():
    """Square's ±ε stripes take the images' dtype: float32's 0.1 is 0.1 + 1.5e-9, which left
    float64 images outside the ball (seen on CUDA)."""
    from transferability.attacks import Square

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)).double()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64) * 0.8 + 0.1
    y = model(x).argmax(1)
    adv = Square(model, eps=0.1, queries=20, seed=0)(x, y)
    assert adv.dtype == torch.float64 and (adv - x).abs().max() <= 0.1 + 1e-15
