"""Adversarial training (PGD-AT, CARTL's FDM) and robust accuracy, against hand-written
references."""

import math

import pytest
import torch
import torch.nn.functional as F

from transferability.attacks import PGD, robust_accuracy
from transferability.features import forward_with_features
from transferability.models import create_model
from transferability.training import check_fit_options, create_training_method, fit
from user_models import saturated_linear


def _saturated():
    return saturated_linear().eval()


def test_robust_accuracy_is_the_worst_case_and_sees_through_saturation():
    import warnings

    model = _saturated()
    x = torch.rand(48, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = robust_accuracy(model, x, y, eps=0.3, steps=5, restarts=2)
    assert result.accuracy == 1.0 and result.n == 48 and result.clean_correct == 48
    assert result.robust_accuracy <= min(result.per_attack.values())
    assert result.robust_correct == round(result.robust_accuracy * 48)
    ce = [v for k, v in result.per_attack.items() if "-ce" in k]
    assert min(ce) > 0.5 and result.robust_accuracy == 0.0  # CE masked, margin is not
    assert len(result.per_attack) == 4
    assert result.broken_by.count(None) == result.robust_correct
    # the first attack (in order) to break each point: CE first, margin for the rest
    first_ce = 48 - round(result.per_attack["pgd5-ce-start0"] * 48)
    assert result.broken_by.count("pgd5-ce-start0") == first_ce
    assert set(result.broken_by) - {None} <= set(result.per_attack)


def test_pgd_at_loss_is_ce_on_pgd_examples_and_mix_adds_the_clean_loss(blobs):
    x, y = blobs[0][:16], blobs[1][:16]
    model = create_model("mlp", 3)
    method = create_training_method("pgd_at", eps=0.2, steps=3, mix=0.25)
    torch.manual_seed(5)
    loss = method.loss(model, x, y)
    torch.manual_seed(5)
    x_adv = PGD(model, 0.2, 2.5 * 0.2 / 3, 3)(x, y)
    expected = 0.75 * F.cross_entropy(model(x_adv), y) + 0.25 * F.cross_entropy(model(x), y)
    torch.testing.assert_close(loss, expected)
    assert method.config() == {"method": "pgd_at", "eps": 0.2, "steps": 3,
                               "alpha": pytest.approx(0.5 / 3), "mix": 0.25}
    assert check_fit_options({"method": "pgd_at", "eps": 0.3, "steps": 7})["eps"] == 0.3


def test_pgd_at_crafts_in_eval_mode_and_makes_the_model_robust(blobs):
    x, y = blobs
    model = create_model("resnet", 3)
    fit(model, (x[:32], y[:32]), method="pgd_at", eps=0.1, steps=2, epochs=1, batch_size=32,
        show_progress=False)
    bn = model.backbone[0][1]
    assert int(bn.num_batches_tracked) == 1  # only the training forward moved the statistics

    def trained(method, **options):
        torch.manual_seed(0)
        m = create_model("mlp", 3)
        fit(m, (x, y), method=method, epochs=4, batch_size=32, show_progress=False, **options)
        return robust_accuracy(m, x, y, eps=0.25, steps=10)

    standard, robust = trained("sgd"), trained("pgd_at", eps=0.25, steps=5)
    assert robust.robust_accuracy > standard.robust_accuracy + 0.2
    assert robust.accuracy > 0.8


def test_cartl_fdm_loss_by_hand(blobs):
    x, y = blobs[0][:12], blobs[1][:12]
    model = create_model("cnn", 3)
    method = create_training_method("cartl_fdm", eps=0.2, steps=2, lam=0.01, k=2)
    method.on_train_begin(model, 1)
    torch.manual_seed(3)
    loss = method.loss(model, x, y)
    torch.manual_seed(3)
    x_adv = PGD(model, 0.2, 2.5 * 0.2 / 2, 2)(x, y)

    def h(inputs):  # the input of the 2nd block from the end
        return model.backbone[:1](model.normalize(inputs)).flatten(1)

    d = h(x).shape[1]
    expected = (F.cross_entropy(model(x_adv), y)
                + 0.01 * (h(x_adv) - h(x)).norm(dim=1).sum() / math.sqrt(d))
    torch.testing.assert_close(loss, expected)
    features, _ = forward_with_features(model, x, layer="backbone.1", layer_input=True)
    torch.testing.assert_close(features, h(x))


def test_bad_adversarial_training_options(blobs):
    with pytest.raises(ValueError, match="eps"):
        create_training_method("pgd_at", eps=0)
    with pytest.raises(ValueError, match="lam"):
        create_training_method("cartl_fdm", eps=0.1, lam=-1)
    with pytest.raises(ValueError, match="k: the backbone has 3 blocks"):
        fit(create_model("cnn", 3), blobs, method="cartl_fdm", eps=0.1, k=9, epochs=1)
    with pytest.raises(ValueError, match="eps"):
        robust_accuracy(create_model("mlp", 3), blobs[0][:4], blobs[1][:4], eps=-0.1)
    with pytest.raises(ValueError, match="restarts"):
        robust_accuracy(create_model("mlp", 3), blobs[0][:4], blobs[1][:4], eps=0.1,
                        restarts=0)


def test_pgd_at_warms_eps_up_linearly_and_warns_at_chance(blobs):
    import warnings

    from transferability.training.methods.adversarial import ChanceAccuracyWarning

    x, y = blobs[0][:8], blobs[1][:8]
    model = create_model("mlp", 3)
    method = create_training_method("pgd_at", eps=0.2, steps=2, warmup_epochs=2)
    method.on_train_begin(model, 4)  # 4 steps an epoch: ε reaches 0.2 at the 8th step
    factors = []
    for step in range(10):
        factors.append(method.radius_factor())
        if step == 2:
            torch.manual_seed(1)
            ours = method.adversarial(model, x, y)
            torch.manual_seed(1)
            torch.testing.assert_close(ours, PGD(model, 0.2 * 3 / 8, 0.25 * 3 / 8, 2)(x, y))
        method.on_step_end(model, 1 + step // 4, step % 4)
    assert factors == pytest.approx([1 / 8, 2 / 8, 3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1, 1, 1])
    assert method.config()["warmup_epochs"] == 2

    with pytest.warns(ChanceAccuracyWarning, match="at chance"):  # ε = 0.6 flips every band
        fit(create_model("mlp", 3), blobs, method="pgd_at", eps=0.6, steps=3, epochs=1,
            lr=1e-6, show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChanceAccuracyWarning)
        fit(create_model("mlp", 3), blobs, method="pgd_at", eps=0.05, steps=2, epochs=3,
            show_progress=False)


def test_a_schema_1_robust_accuracy_reads_its_clean_accuracy_as_accuracy():
    from transferability.attacks import RobustAccuracy

    old = {"type": "RobustAccuracy", "schema": 1, "clean_accuracy": 0.75, "robust_accuracy": 0.5,
           "n": 4, "clean_correct": 3, "robust_correct": 2, "eps": 0.1}
    result = RobustAccuracy.from_dict(old)
    assert (result.accuracy, result.robust_accuracy, result.clean_correct) == (0.75, 0.5, 3)
    assert result.to_dict()["schema"] == 2 and "clean_accuracy" not in result.to_dict()
