"""The transfer-attack audit shown: the attack × family table, the orderings and the
targeted rows, as text and as the report's section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..report import format_table, write_csv
from ..studies.audit import STUDY, AuditResult
from .sections import register_section
from .tables import claims, details, kv, table
from .text import escape, finite


def format_audit(result) -> str:
    """The attack × family table, the orderings and the targeted rows as text."""

    def ci(r, p):
        if r[f"rate_{p}"] is None:
            return "n/a"
        return f"{r[f'rate_{p}']:.3f} [{r[f'low_{p}']:.3f}, {r[f'high_{p}']:.3f}]"

    table = [{"attack": r["attack"], "family": r["family"], "rank": r["rank"],
              "success (both correct) [95% CI]": ci(r, "both_correct"),
              "success (all) [95% CI]": ci(r, "all"), "L2": r["l2"], "Linf": r["linf"],
              "SSIM": r["ssim"]} for r in result.families]
    parts = [f"transfer success by attack and victim family (n={result.settings.get('n')}, "
             "transfer pairs only; both denominators)", format_table(table)]
    if result.targeted:
        parts += ["", "targeted (victim predicts the target, all images)",
                  format_table([{"loss": r["loss"], "family": r["family"],
                                 "success [95% CI]": ci(r, "all")}
                                for r in result.targeted])]
    parts += ["", "orderings:", *result.claims]
    return "\n".join(parts)


def _html_rate_ci(protocol: str) -> Callable[[dict], tuple[str, str]]:
    """A success rate with its bootstrap interval, in %: ``64.0 [51.0, 76.0]%``."""
    def rate_ci_cell(row: dict) -> tuple[str, str]:
        r, lo, hi = (row.get(f"{k}_{protocol}") for k in ("rate", "low", "high"))
        if not finite(r):
            return "–", ""
        return f"{100 * r:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]%", repr(r)
    return rate_ci_cell


def _html_section(sid: str, result: AuditResult) -> str:
    """The audit's section of the HTML report: the attack-by-family table, the verdicts,
    the targeted attacks, the rows."""
    settings = result.settings
    columns = ["attack", "family", "rank", "pairs",
               ("success, both correct [95% CI]", _html_rate_ci("both_correct")),
               ("success, all images [95% CI]", _html_rate_ci("all")), "l2", "linf", "ssim"]
    parts = [f'<p class="note">Transfer pairs only (surrogate ≠ victim), '
             f'{escape(settings.get("n"))} images, 8-bit quantised: '
             f'{escape(str(settings.get("quantize")))}; intervals: percentile bootstrap over '
             "images.</p>",
             table(result.families, columns, id=f"{sid}-families"),
             claims(result.claims)]
    if result.targeted:
        parts += ["<h3>Targeted (the victim predicts the target)</h3>",
                  table(result.targeted, ["loss", "family", "pairs",
                                          ("success [95% CI]", _html_rate_ci("all"))],
                        id=f"{sid}-targeted")]
    rows = result.rows
    parts += [details(f"per (attack, surrogate, victim) rows ({len(rows)})",
                      table(rows, id=f"{sid}-rows")),
              details("settings", kv(settings))]
    return "".join(parts)


def audit_files(result: AuditResult, folder: Path) -> list[Path]:
    """``audit_rows.csv``, ``audit_families.csv`` and one heatmap per attack
    (``heatmap_<attack>.png``) in ``folder``."""
    files = [write_csv(result.rows, folder / "audit_rows.csv"),
             write_csv(result.families, folder / "audit_families.csv")]
    for attack, matrix in result.matrices().items():
        files.append(matrix.plot(folder / f"heatmap_{attack}.png"))
    return files


register_section(AuditResult, STUDY.title, _html_section, format=format_audit,
                 files=audit_files)
