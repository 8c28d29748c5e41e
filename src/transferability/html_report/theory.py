"""The theory check shown: its table of α and the fit loss per perturbation scale."""

from __future__ import annotations

from ..report import format_table
from ..studies.theory import STUDY, TheoryResult
from .sections import register_section
from .tables import table


def format_theory(result: TheoryResult) -> str:
    return ("synthetic check (Liang et al.): sources = target MLP with weights perturbed at "
            "each scale;\nα^(T→S) with exact Jacobians should fall and the affine-fit loss "
            "rise\n" + format_table(result.rows))


def _html_section(sid: str, result: TheoryResult) -> str:
    return ('<p class="note">Sources are the target MLP with its weights perturbed at each '
            "scale: α^(T→S) (exact Jacobians) should fall and the affine-fit loss rise.</p>"
            + table(result.rows, id=f"{sid}-rows"))


register_section(TheoryResult, STUDY.title, _html_section, format=format_theory)
