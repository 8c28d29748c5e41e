"""The theory check as a study: a small MLP target on a synthetic regression task; sources
are its weights perturbed at increasing scale; α1, α2, α12 and the affine-fit loss per scale
(Liang et al., ICML 2021, Theorems 1 and 2: as the source moves away from the target,
α^(T→S) falls and the fit loss rises). See :func:`~transferability.adversarial.theory_check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._results import Result
from .._validation import Each, Integer, Positive, Seed
from ..adversarial import theory_check
from ..jobs import Job, ResultStore, job_kind, open_store, run_jobs
from . import Settings, Study, register_study, setting

__all__ = ["TheorySettings", "TheoryResult", "run_theory"]


@dataclass(frozen=True)
class TheorySettings(Settings):
    """The perturbation scales (relative to the weights' RMS), the samples and the seed."""

    scales: tuple[float, ...] = setting((0.0, 0.1, 0.2, 0.4, 0.8, 1.6),
                                        Each(Positive(allow_zero=True)),
                                        "perturbation scales, relative to the weights' RMS")
    n: int = setting(1000, Integer(2, 1_000_000), "samples (at most 10^6)")
    seed: int = setting(0, Seed(), "seed of the target, the perturbations and the inputs")


@dataclass(frozen=True)
class TheoryResult(Result):
    """One row per scale: ``scale``, ``alpha1``, ``alpha2``, ``alpha12``,
    ``alpha1_alpha2``, ``fit_loss``."""

    rows: list[dict]
    settings: dict = field(default_factory=dict)


@job_kind("theory_check")
def theory_job(config: dict, inputs: dict, device=None) -> dict:
    rows = [r.record() for r in theory_check(tuple(config["scales"]), n=config["n"],
                                             seed=config["seed"], device=device)]
    return TheoryResult(rows, config).to_dict()


def run_theory(settings: TheorySettings = TheorySettings(), *,
               store: ResultStore | None = None, cache_dir=None, backend: str = "local",
               device=None, show_progress: bool | None = None,
               **backend_options) -> TheoryResult:
    """The check as one stored job (a rerun reads it back)."""
    final = Job("theory_check", settings.to_dict(), label="theory")
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="theory", backend=backend, device=device,
                       show_progress=show_progress, **backend_options)
    return TheoryResult.from_dict(run.value(final))


STUDY = register_study(Study(
    "theory", "Theory check: α and the affine fit against source distance", TheoryResult,
    "theory_check", run_theory, TheorySettings(),
    help="A small MLP target on a synthetic regression task; sources are its weights "
         "perturbed at increasing scale; α1, α2 and the affine-fit loss per scale (Liang et "
         "al. 2021)."))
