import pytest
import torch

from transferability.models import create_model
from transferability.training import evaluate, fit


def test_fit_lowers_loss_and_learns(blobs):
    x, y = blobs
    model = create_model("mlp", num_classes=3)
    acc0, loss0 = evaluate(model, (x, y))
    history = fit(model, (x, y), epochs=4, lr=0.05, batch_size=32, test=(x, y))
    acc, loss = evaluate(model, (x, y))
    assert loss < 0.5 * loss0 and acc > 0.95
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3, 4]
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.last["accuracy"] == pytest.approx(acc)
    assert history.last["loss"] == pytest.approx(loss)


def test_a_schema_1_history_reads_its_eval_records_as_accuracy_and_loss():
    from transferability.training import History

    old = {"type": "History", "schema": 1, "config": {}, "stopped_at": None,
           "epochs": [{"epoch": 1, "lr": 0.1, "train_loss": 0.9, "eval_acc": 0.5,
                       "eval_loss": 1.2, "seconds": 0.1}]}
    history = History.from_dict(old)
    assert history.last == {"epoch": 1, "lr": 0.1, "train_loss": 0.9, "accuracy": 0.5,
                            "loss": 1.2, "seconds": 0.1}
    assert history.to_dict()["schema"] == 2


def test_fit_is_seeded_and_snapshots(blobs, tmp_path):
    from transferability.models import load_checkpoint
    from transferability.training import Snapshot

    x, y = blobs

    def run(seed, callbacks=()):
        torch.manual_seed(0)
        model = create_model("lenet", num_classes=3)
        return model, fit(model, (x, y), epochs=2, seed=seed, callbacks=callbacks)

    snapshot = Snapshot(every=1, directory=tmp_path / "snaps")
    m1, h1 = run(5, [snapshot])
    m2, _ = run(5)
    m3, _ = run(6)

    def same(a, b):
        return all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())

    assert same(m1, m2) and not same(m1, m3)
    assert set(snapshot.states) == {1, 2}
    assert not torch.equal(snapshot.states[1]["head.weight"], m1.state_dict()["head.weight"])
    assert torch.equal(snapshot.states[2]["head.weight"], m1.state_dict()["head.weight"])
    first = load_checkpoint(tmp_path / "snaps" / "epoch-001.pt")
    assert torch.equal(first.head.weight, snapshot.states[1]["head.weight"])
    assert first.meta["epoch"] == 1 and first.meta["record"]["epoch"] == 1


def test_a_custom_method_and_a_param_subset(blobs):
    from transferability.training import TrainingMethod

    x, y = blobs
    model = create_model("cnn", num_classes=3)
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    calls = {"loss": 0, "step": 0}

    class TwoPass(TrainingMethod):  # a SAM-style two-pass step
        def loss(self, m, xb, yb):
            calls["loss"] += 1
            return torch.nn.functional.cross_entropy(m(xb), yb)

        def step(self, m, optimizer, closure):
            calls["step"] += 1
            closure()
            loss = closure()
            optimizer.step()
            return loss

    fit(model, (x, y), method=TwoPass(), epochs=1, batch_size=60, params=model.head.parameters())
    assert calls == {"loss": 6, "step": 3}
    assert all(torch.equal(backbone_before[k], v) for k, v in model.backbone.state_dict().items())


def test_mode_restored_and_bad_arguments(blobs):
    x, y = blobs
    model = create_model("resnet", num_classes=3).eval()
    fit(model, (x, y), epochs=1)
    assert not model.training
    model.train()
    model.backbone[1].bn1.eval()  # a mixed mode, deliberately
    fit(model, (x, y), epochs=1)
    assert model.training and not model.backbone[1].bn1.training and model.backbone[1].bn2.training
    evaluate(model.train(), (x, y))
    assert model.training and model.backbone[1].bn1.training
    with pytest.raises(ValueError, match="schedule"):
        fit(model, (x, y), schedule="linear")
    with pytest.raises(ValueError, match="lr"):
        fit(model, (x, y), lr=-1)
    with pytest.raises(ValueError, match="train"):
        fit(model, "mnist")
