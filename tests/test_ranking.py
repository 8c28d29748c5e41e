import pytest
import torch

from transferability.data import ImageDataset
from transferability.estimators import leep
from transferability.features import extract
from transferability.models import create_model
from transferability.ranking import output_estimators, rank_sources
from transferability.training import fit


@pytest.fixture(scope="module")
def task():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(40)
    x = torch.rand(160, 1, 28, 28, generator=g) * 0.3
    for c in range(4):
        x[y == c, :, 7 * c:7 * c + 7, :] += 0.6
    return ImageDataset(x.clamp(0, 1), y)


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
    assert len(result.correlations) == len(result.estimators)
    assert result.sorted_by("logme")[0]["source"] == "good"
    assert "agreement with probe_acc" in result.format()


def test_rank_sources_rejects_unknown_estimator(task):
    with pytest.raises(ValueError, match="estimators: unknown value 'bogus'"):
        rank_sources({"m": create_model("mlp", num_classes=4)}, task, estimators=["bogus"])
