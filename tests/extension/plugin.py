"""One file from outside the package that adds an attack, an estimator, a dataset and a
study (with its report section): what a user writes to extend ``transferability``.
``tests/test_extending.py`` imports it and finds each in the registry listings, the CLI's
help and (the study) the report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from transferability import register_attack, register_dataset, register_estimator, studies
from transferability._results import Result
from transferability._validation import Integer, Text
from transferability.attacks import Attack
from transferability.data import DatasetInfo
from transferability.html_report import register_section
from transferability.jobs import Job, job_kind, open_store, run_jobs


@register_attack("plugin-noise", summary="uniform noise in the ε-ball (a plugin's attack)",
                 takes_steps=False, randomized=True, grads_per_step=0)
class UniformNoise(Attack):
    """Uniform noise in the L∞ ball: a black-box baseline."""

    def perturb(self, x, y, generator):
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + (noise * 2 - 1) * self.eps).clamp(0, 1)


@register_estimator("plugin-margin", inputs="probs")
def mean_margin(probs: np.ndarray, target_labels: np.ndarray) -> float:
    """Mean gap between the two most probable source classes (a plugin's estimator)."""
    top = np.sort(np.asarray(probs), axis=1)
    return float(np.mean(top[:, -1] - top[:, -2]))


def _stripes(n_per_class: int = 20, seed: int = 0):
    """Horizontal stripes at 4 heights: a 4-class task of 28×28 grey images."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), n_per_class)
    x = rng.uniform(0, 0.2, (len(y), 1, 28, 28)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, 4 + 6 * c: 8 + 6 * c, :] = 0.9
    return torch.from_numpy(x), torch.from_numpy(y), [f"stripe-{c}" for c in range(4)]


register_dataset(DatasetInfo("plugin-stripes", "any (default 80)", 4,
                             "horizontal stripes at 4 heights (a plugin's dataset)", _stripes))


@dataclass(frozen=True)
class CountResult(Result):
    rows: list[dict]
    settings: dict = field(default_factory=dict)


@job_kind("plugin_count")
def _count_job(config: dict, inputs: dict) -> dict:
    from transferability.data import load_dataset

    data = load_dataset(config["dataset"], "all")
    counts = data.class_counts().tolist()
    return CountResult([{"class": c, "images": n} for c, n in enumerate(counts)],
                       config).to_dict()


@dataclass(frozen=True)
class CountSettings(studies.Settings):
    dataset: str = studies.setting("plugin-stripes", Text(), "the dataset to count")
    times: int = studies.setting(1, Integer(1, 10), "how many times (a second setting)")


def run_count(settings: CountSettings = CountSettings(), *, store=None, cache_dir=None,
              backend="local", device=None, show_progress=None,
              **backend_options) -> CountResult:
    final = Job("plugin_count", settings.to_dict(), label=settings.dataset)
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="plugin-count", backend=backend, device=device,
                       show_progress=show_progress, **backend_options)
    return CountResult.from_dict(run.value(final))


STUDY = studies.register_study(studies.Study(
    "plugin-count", "Images per class (a plugin's study)", CountResult, "plugin_count",
    run_count, CountSettings(), help="Count the images of each class (a plugin's study)."))
register_section(CountResult, STUDY.title,
                 lambda sid, r: f'<p id="{sid}-total">{sum(x["images"] for x in r.rows)} '
                                "images counted</p>")
