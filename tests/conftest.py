import os

import pytest
import torch

os.environ.setdefault("TRANSFERABILITY_PROGRESS", "0")
# Commands run on the CPU unless a test names a device, so the suite's numbers are the same
# on a GPU machine; TRANSFERABILITY_DEVICE=cuda pytest runs every command on the GPU.
os.environ.setdefault("TRANSFERABILITY_DEVICE", "cpu")
# The suite runs many tiny ops: one thread is faster and steadier than two on a shared
# 2-core machine, and keeps float reductions in a fixed order.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run only where a CUDA GPU is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch "
                                   f"{torch.__version__})")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own model/feature cache, never the user's."""
    monkeypatch.setenv("TRANSFERABILITY_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def blobs():
    """A linearly separable 3-class image task: class c lights up band c of the image."""
    g = torch.Generator().manual_seed(0)
    n = 60
    y = torch.arange(3).repeat_interleave(n)
    x = torch.rand(3 * n, 1, 28, 28, generator=g) * 0.3
    for c in range(3):
        x[y == c, :, 9 * c:9 * c + 9, :] += 0.6
    return x.clamp(0, 1), y
