import pytest
import torch

from transferability.data import ImageDataset
from transferability.estimators import leep
from transferability.features import extract
from transferability.models import create_model
from transferability.ranking import output_estimators, rank_sources
from transferability.training import fit


def stripes() -> ImageDataset:
    """A 4-class image task: class c lights up band c of the image (160 images)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(40)
    x = torch.rand(160, 1, 28, 28, generator=g) * 0.3
    for c in range(4):
        x[y == c, :, 7 * c:7 * c + 7, :] += 0.6
    return ImageDataset(x.clamp(0, 1), y)


@pytest.fixture(scope="module")
def task():
    return stripes()


def test_rank_sources_scores_and_validates(task):
    torch.manual_seed(0)
    good = create_model("mlp", num_classes=4)
    fit(good, task, epochs=3, batch_size=32)
    models = {"good": good, "random-a": create_model("mlp", num_classes=4),
              "random-b": create_model("lenet", num_classes=4)}
    result = rank_sources(models, task, test=task, seed=0)
    assert result.truth == "probe_acc" and set(result.estimators) == set(output_estimators())
    by_name = {r["source"]: r for r in result.rows}
    # each score equals the estimator called directly on one extraction pass
    out = extract(good, task.x)
    assert by_name["good"]["leep"] == pytest.approx(leep(out.probs, task.y), abs=1e-9)
    assert by_name["good"]["logme"] > max(by_name["random-a"]["logme"],
                                          by_name["random-b"]["logme"])
    assert len(result.correlations) == len(result.estimators) + len(result.baselines)
    # the target-blind baselines: untrained models record no source accuracy
    assert result.baselines == ["params", "feature_dim"]
    assert by_name["good"]["params"] == sum(p.numel() for p in good.parameters())
    assert by_name["good"]["feature_dim"] == out.features.shape[1]
    assert result.sorted_by("logme")[0]["source"] == "good"
    assert "agreement with probe_acc" in result.format()


def test_rank_sources_rejects_unknown_estimator(task):
    with pytest.raises(ValueError, match="estimators: unknown value 'bogus'"):
        rank_sources({"m": create_model("mlp", num_classes=4)}, task, estimators=["bogus"])


def test_rank_sources_source_accuracy_and_the_mean_rank_ensemble(task):
    models = {n: create_model(a, num_classes=4) for n, a in
              (("a", "mlp"), ("b", "lenet"), ("c", "cnn"))}
    models["c"].meta = {"metrics": {"accuracy": 0.9}}  # as a zoo model records it
    result = rank_sources(models, task, estimators=["logme", "knn"],
                          source_accuracy={"a": 0.5, "b": 0.7}, ensemble=["logme", "params"])
    by_name = {r["source"]: r for r in result.rows}
    assert [by_name[n]["source_acc"] for n in "abc"] == [0.5, 0.7, 0.9]
    assert result.baselines == ["params", "source_acc", "feature_dim", "ensemble"]
    def rank(n, key):  # 1 = lowest; no ties among three random models
        return sorted(models, key=lambda m: by_name[m][key]).index(n) + 1

    for n in models:
        assert by_name[n]["ensemble"] == (rank(n, "logme") + rank(n, "params")) / 2
    with pytest.raises(ValueError, match="source_accuracy: no source"):
        rank_sources(models, task, estimators=["knn"], source_accuracy={"zz": 0.1})
    with pytest.raises(ValueError, match="ensemble: unknown value"):
        rank_sources(models, task, estimators=["knn"], ensemble=["nope"])


def test_model_accuracy_reads_the_zoo_metrics_of_now_and_before():
    from transferability.baselines import model_accuracy

    assert model_accuracy({"metrics": {"accuracy": 0.9, "loss": 0.3}}) == 0.9
    assert model_accuracy({"metrics": {"test_acc": 0.8}}) == 0.8  # checkpoints before
    assert model_accuracy({"source_acc": 0.7, "metrics": {"accuracy": 0.9}}) == 0.7
    assert model_accuracy({"arch": "mlp"}) is None and model_accuracy(None) is None


def test_the_default_ensemble_scores_its_members(task):
    from transferability.baselines import DEFAULT_ENSEMBLE, ensemble_names, mean_rank

    assert ensemble_names([]) == ensemble_names("default") == list(DEFAULT_ENSEMBLE)
    assert ensemble_names(None) is None and ensemble_names(["knn"]) == ["knn"]
    models = {n: create_model(a, num_classes=4) for n, a in
              (("a", "mlp"), ("b", "lenet"), ("c", "cnn"))}
    result = rank_sources(models, task, estimators=["knn"], ensemble="default")
    # the members are scored although `estimators` leaves them out
    assert all(set(DEFAULT_ENSEMBLE) <= set(r) for r in result.rows)
    assert [r["ensemble"] for r in result.rows] == mean_rank(result.rows, DEFAULT_ENSEMBLE)
