"""How each result type is shown: its report section, its text table and its figures.

The module that shows a study (``html_report/<study>.py``, or a user's own file) registers
its result type here with :func:`register_section`: the section's title, ``render(section_id,
result)`` for the HTML report, ``format(result)`` for the text the command line prints and
``files(result, out_dir)`` for the files it saves beside its JSON (figures, tables). Job
code never imports this package, so editing how a result is shown reruns nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._registry import Registry

__all__ = ["Section", "register_section", "section_of", "list_sections", "format_result",
           "result_files"]


@dataclass(frozen=True)
class Section:
    """How ``result`` (a :class:`~transferability._results.Result` type) is shown."""

    result: type
    title: str
    render: Callable[[str, object], str] | None = None
    format: Callable[[object], str] | None = None
    files: Callable[[object, Path], list] | None = None


_SECTIONS = Registry("report section")


def register_section(result: type, title: str, render: Callable[[str, object], str] | None = None,
                     *, format: Callable[[object], str] | None = None,
                     files: Callable[[object, Path], list] | None = None) -> type:
    """Show ``result`` under ``title``: drawn in the report by ``render(section_id, result)``
    (None: the generic section of its fields), printed by ``format(result)``, and saved
    beside its JSON by ``files(result, out_dir)`` (figures, CSV tables); returns ``result``."""
    if not isinstance(result, type):
        raise ValueError(f"result: expected a Result type, got {result!r}")
    _SECTIONS.register(result.__name__, Section(result, title, render, format, files))
    return result


def section_of(type_name: str) -> Section | None:
    """The section registered for the result type called ``type_name``, or None."""
    return _SECTIONS.get(type_name) if type_name in _SECTIONS else None


def list_sections() -> list[Section]:
    """Every registered section, in registration order."""
    return _SECTIONS.values()


def format_result(result) -> str:
    """``result`` as text: its section's ``format``, else its own ``format()``, else its
    fields as JSON."""
    section = section_of(type(result).__name__)
    if section is not None and section.format is not None:
        return section.format(result)
    if callable(getattr(result, "format", None)):
        return result.format()
    return json.dumps(result.to_dict(), indent=1, default=str)


def result_files(result, out_dir: str | Path) -> list[Path]:
    """The files of ``result`` (figures, tables) written in ``out_dir``: its section's
    ``files``, or none."""
    section = section_of(type(result).__name__)
    if section is None or section.files is None:
        return []
    return list(section.files(result, Path(out_dir)))
