"""The adversarial <-> knowledge study shown: its text tables and its section of the report
(ranks, scores, agreement with the ground truth, scatters, the transfer matrix, the reverse
direction)."""

from __future__ import annotations

import math

from ..adversarial import MODEL_SCORES
from ..ranking import format_correlations
from ..report import format_table
from ..studies.adv_knowledge import STUDY, StudyResult
from .charts import svg_scatter
from .sections import register_section
from .tables import ci_cell, label, table
from .text import escape, finite, secs
from .transfer_matrix import transfer_matrix_section


def format_study(result) -> str:
    """The study's result as text."""
    adversarial = [p for p in result.predictors if p in MODEL_SCORES]
    knowledge = [p for p in result.predictors if p not in MODEL_SCORES]
    parts = ["knowledge transfer (probes) and estimators",
             format_table(result.rows, ["source", "probe_acc", result.truth, "fewshot_std",
                                      *knowledge]), "",
             "adversarial scores, reference (target) -> source",
             format_table(result.rows, ["source", *adversarial]),
             *([] if result.reference is None else [result.reference.describe()]),
             *([f"{', '.join(adversarial)}: n/a, {result.reference.note}"]
               if result.reference is not None and result.reference.note else []), "",
             f"every score vs {result.truth} ({len(result.rows)} sources, 95% bootstrap CI)",
             format_correlations(result.correlations)]
    if result.transfer_matrix is None:
        parts += ["", f"every score vs probe_acc ({len(result.rows)} sources)",
                  format_correlations(result.probe_correlations)]
    if result.reverse:
        parts += ["", "reverse direction: knowledge transfer between the reference and each "
                  "transferred model\n(model_fit = -affine-fit loss of reference logits from "
                  "source logits) vs measured adversarial transfer",
                  format_table(result.reverse), "",
                  format_correlations(result.reverse_correlations)]
    return "\n".join(parts)


def _html_correlations(sid: str, rows: list[dict], name: str = "correlations") -> str:
    """Each score's agreement with the ground truth, with its CIs, top-1 hit and regret."""
    return table(rows, [("score", lambda r: (label(r.get("estimator", "")), None)),
                        ("weighted τ [95% CI]", lambda r: ci_cell(r, "weighted_tau")),
                        ("Spearman ρ [95% CI]", lambda r: ci_cell(r, "spearman")),
                        ("Pearson r [95% CI]", lambda r: ci_cell(r, "pearson")),
                        "top1",
                        ("regret", lambda r: ((f"{100 * r['regret']:.1f} pp", repr(r["regret"]))
                                              if finite(r.get("regret")) else ("–", "")))],
                 id=f"{sid}-{name}")


def _html_section(sid: str, result: StudyResult) -> str:
    """The study's section of the HTML report: ranks, scores, correlations, scatters, the
    transfer matrix and the reverse direction."""
    rows, truth, predictors = result.rows, result.truth, list(result.predictors)
    adversarial = [p for p in dict.fromkeys(k for r in rows for k in r) if p in MODEL_SCORES]
    knowledge = [p for p in predictors if p not in MODEL_SCORES]
    n = len(rows)
    ranked = sorted(rows, key=lambda r: -r[truth] if finite(r.get(truth)) else math.inf)
    ranked = [{"rank": k + 1, **r} for k, r in enumerate(ranked)]
    known = {"rank", "source", "probe_acc", truth, "fewshot_std", "affine_loss", *knowledge,
             *adversarial}
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in known]
    truth_label = label(truth)
    parts = [f'<p class="note">n = {n} sources, ranked by {escape(truth_label)} (the ground '
             "truth) on the target's test images; click a header to sort.</p>",
             "<h3>Knowledge transfer: probes and estimators</h3>",
             table(ranked, ["rank", "source", *extra, "probe_acc", truth, "fewshot_std",
                            *knowledge], id=f"{sid}-ranks")]
    if adversarial:
        reference = result.reference
        parts += ["<h3>Adversarial scores, reference (target) → source</h3>",
                  *([] if reference is None else [
                      f'<p class="note">{escape(reference.describe())}'
                      + (f"; n/a: {escape(reference.note)}" if reference.note else "")
                      + "</p>"]),
                  table(ranked, ["rank", "source", truth, *adversarial], id=f"{sid}-scores")]
    corr = {c.get("estimator"): c for c in result.correlations}
    parts += [f"<h3>Agreement with {escape(truth_label)}</h3>",
              f'<p class="note">Each score against {escape(truth_label)} over n = {n} sources, '
              "with 95% bootstrap confidence intervals over sources. top1: the top-scored "
              "source has the best probe accuracy; regret: probe accuracy lost by picking it "
              "(percentage points).</p>",
              _html_correlations(sid, result.correlations)]
    scatters = []
    for p in dict.fromkeys([*predictors, *adversarial]):
        rho = corr.get(p, {}).get("spearman")
        title = label(p) + (f" (ρ = {rho:+.2f})" if finite(rho) else "")
        scatters.append(svg_scatter([(r.get(p), r.get(truth), r.get("source", "")) for r in rows],
                                    title=title, x_label=label(p), y_label=truth_label,
                                    y_percent=True))
    if scatters:
        parts += [f"<h3>Scores against {escape(truth_label)}</h3>",
                  f'<p class="note">One panel per score, one point per source (n = {n}); '
                  "hover a point for its values.</p>",
                  '<div class="grid">' + "".join(f"<figure>{s}</figure>" for s in scatters)
                  + "</div>"]
    if result.transfer_matrix is not None:
        parts += ["<h3>Transfer matrix: reference and transferred models</h3>",
                  transfer_matrix_section(sid, result.transfer_matrix)]
    if result.reverse:
        parts += ["<h3>Reverse direction</h3>",
                  '<p class="note">Knowledge transfer between the reference and each '
                  "transferred model (model fit = −affine-fit loss of the reference's logits "
                  "from the source's) against measured adversarial transfer (fooled / both "
                  f"correct), n = {len(result.reverse)} sources.</p>",
                  table(result.reverse, ["source", "model_fit", "adv_reference_to_source",
                                         "adv_source_to_reference"], id=f"{sid}-reverse"),
                  _html_correlations(sid, result.reverse_correlations, "reverse-correlations")]
    if result.timings:
        parts.append('<p class="note">study timings: ' + escape(" · ".join(
            f"{k} {secs(s)}" for k, s in result.timings.items())) + "</p>")
    return "".join(parts)


def study_files(result: StudyResult, out_dir) -> list:
    """Every score against the truth (one panel each) and the transfer matrix, as PNGs."""
    from ..plots import plot_scatter_grid

    files = [plot_scatter_grid(result.rows, result.predictors, result.truth,
                               out_dir / "scores.png")]
    if result.transfer_matrix is not None:
        files.append(result.transfer_matrix.plot(out_dir / "transfer_matrix.png"))
    return files


register_section(StudyResult, STUDY.title, _html_section, format=format_study,
                 files=study_files)
