"""The scores of ``pick-surrogate`` shown: one row per score, one column per candidate, and
a report section."""

from __future__ import annotations

from ..pick_surrogate import SurrogateScores
from .sections import register_section
from .tables import details, kv, table


def format_scores(result: SurrogateScores) -> str:
    """Scores by row, candidates by column."""
    names = sorted({c for row in result.scores.values() for c in row})
    lines = ["score".ljust(14) + "".join(n[:12].rjust(13) for n in names)]
    for s, row in result.scores.items():
        lines.append(s.ljust(14) + "".join(f"{row.get(n, float('nan')):13.4f}"
                                           for n in names))
    return "\n".join(lines)



def _html_section(sid: str, result: SurrogateScores) -> str:
    names = sorted({c for row in result.scores.values() for c in row})
    rows = [{"score": s, **{n: row.get(n) for n in names}} for s, row in result.scores.items()]
    return (table(rows, id=f"{sid}-scores")
            + (details("skipped estimators", kv(result.skipped)) if result.skipped else ""))


register_section(SurrogateScores, "Candidate surrogates for a victim", _html_section,
                 format=format_scores)
