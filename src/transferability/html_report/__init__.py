"""How results are shown: the self-contained HTML report of a results store
(``write_report(store, path)``), and each result type's text table and figures.

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
:mod:`.charts` (SVG), :mod:`.assets` (CSS, JS), :mod:`.sections` (the registry of how each
result type is shown) and :mod:`.page` (the page and provenance). One module per result
type registers its section, text and figures: :mod:`.transfer_matrix` and one per study
(:mod:`.adv_knowledge`, :mod:`.surrogates`, :mod:`.robust_transfer`, :mod:`.benchmark`,
:mod:`.audit`, :mod:`.theory`). Job code never imports this package (it imports the
studies), so editing how a result is shown reruns nothing.
"""

from . import (  # noqa: F401  (each registers its result type's section)
    adv_knowledge,
    audit,
    benchmark,
    pick_surrogate,
    robust_transfer,
    surrogate_choice,
    surrogates,
    theory,
    transfer_matrix,
)
from .page import render_report, section_id, write_report
from .sections import format_result, register_section, result_files

__all__ = ["write_report", "render_report", "section_id", "register_section",
           "format_result", "result_files"]
