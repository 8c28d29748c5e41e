"""Every old spelling the library still accepts, in one table, with the version that stops
accepting it. The places that read an old spelling take it from here and warn once with
today's spelling; deleting a row (at its ``removed_in``) deletes the spelling everywhere.

Stored results are not spellings: a result written by an older version is read back by its
type's ``upgrade`` (``_results.Result.renamed``), for good.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

__all__ = ["Spelling", "SPELLINGS", "old_spellings", "warn_old"]


@dataclass(frozen=True)
class Spelling:
    """``old`` is read as ``new`` in ``where`` (a command, or ``monitor``, ``metric``)
    until version ``removed_in``."""

    old: str
    new: str
    where: str
    removed_in: str = "0.2.0"

    def message(self) -> str:
        return (f"{self.where}: {self.old!r} is now {self.new!r}; the old spelling is "
                f"removed in {self.removed_in}")


SPELLINGS = (
    Spelling("--n-per-class", "--alpha-per-class", "rank"),
    Spelling("--n-per-class", "--alpha-per-class", "study adv-knowledge"),
    Spelling("--eps", "--radii", "study robust-transfer"),
    Spelling("--attacks", "--only", "study audit"),
    Spelling("--n-per-class", "--attack-per-class", "study audit"),
    Spelling("eval_acc", "accuracy", "monitor"),  # EarlyStopping(monitor=), History records
    Spelling("eval_loss", "loss", "monitor"),
    Spelling("test_acc", "accuracy", "metric"),  # a checkpoint's meta["metrics"]
)


def old_spellings(where: str) -> dict[str, Spelling]:
    """The old spellings read in ``where``, by old spelling."""
    return {s.old: s for s in SPELLINGS if s.where == where}


def warn_old(spelling: Spelling, stacklevel: int = 3) -> None:
    """One ``FutureWarning`` naming today's spelling and the version that drops the old."""
    warnings.warn(spelling.message(), FutureWarning, stacklevel=stacklevel)
