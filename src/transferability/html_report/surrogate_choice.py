"""The surrogate-choice study shown: which score picks the surrogate that fools a victim,
beside the target-blind baselines, and the reverse question."""

from __future__ import annotations

from ..report import format_table
from ..studies.surrogate_choice import STUDY, SurrogateChoiceResult
from .sections import register_section
from .tables import claims, details, kv, table


def _rows(summary: list[dict]) -> list[dict]:
    return [{"score": r["score"] + (" (target-blind)" if r["blind"] else ""),
             "mean weighted tau": r["mean"], "low": r["low"], "high": r["high"],
             "groups": r["n"]} for r in summary]


def format_surrogate_choice(result: SurrogateChoiceResult) -> str:
    n = len(result.rates.get("victims", []))
    return "\n".join([
        f"picking surrogates: every score's weighted tau against measured transfer, mean "
        f"over {n} victims (95% bootstrap CI)", format_table(_rows(result.summary)), "",
        "the reverse question: victims ranked by exposure to one surrogate, mean over "
        "surrogates", format_table(_rows(result.reverse)), "",
        "claims (paired over victims, bootstrap interval):",
        *(f"- {c}" for c in result.claims)])


def _html_section(sid: str, result: SurrogateChoiceResult) -> str:
    n = len(result.rates.get("victims", []))
    return "".join([
        f'<p class="note">Every model in turn is the victim (n = {n}) and the others are '
        "candidate surrogates; each score's weighted Kendall τ against the measured "
        "transfer (fooled / both correct, 8-bit images), mean over victims with a 95% "
        "bootstrap interval. Target-blind baselines are marked.</p>",
        table(_rows(result.summary), id=f"{sid}-summary"),
        "<h3>The reverse question: victims ranked by exposure to one surrogate</h3>",
        table(_rows(result.reverse), id=f"{sid}-reverse"),
        claims(result.claims),
        details(f"per (victim, score) rows ({len(result.rows)})",
                table(result.rows, id=f"{sid}-rows")),
        details("settings", kv(result.settings))])


register_section(SurrogateChoiceResult, STUDY.title, _html_section,
                 format=format_surrogate_choice)
