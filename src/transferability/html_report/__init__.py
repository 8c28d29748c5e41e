"""A self-contained HTML report of a results store: ``write_report(store, path)``.

One file that reads offline: the CSS and the few lines of JavaScript (sortable tables) are
inline, every figure is hand-written SVG, and nothing is fetched. The report only reads the
store's records and runs nothing. Each study's final record (a value that is a result
dict with a ``"type"``, which no other record takes as input) gets a section, the latest
one per job kind and config; a provenance panel says what ran, where, with which code and
for how long. Names come from users, so every piece of text is escaped.

Section ids: ``study-<first 12 characters of the record's key>`` for a study and
``provenance`` for the panel (``provenance-<key12>`` for a study's part of it); a table of
a study is ``<section id>-<name>`` (``-ranks``, ``-scores``, ``-correlations``, ...).

The package draws it in parts: :mod:`.text` (escaping, numbers), :mod:`.tables`,
:mod:`.charts` (SVG), :mod:`.assets` (CSS, JS) and :mod:`.page` (the page, its sections and
provenance); :mod:`.transfer_matrix` draws a transfer matrix. A study draws its own section
from its result object (the ``render`` of its :class:`~transferability.studies.Study`).
"""

from . import transfer_matrix  # noqa: F401  (gives a stand-alone transfer matrix its section)
from .page import register_section, render_report, section_id, write_report

__all__ = ["write_report", "render_report", "section_id", "register_section"]
