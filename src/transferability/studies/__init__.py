"""One descriptor per study, one registry: the CLI, the demo, the HTML report and the job
store find studies here, never by name.

A study module builds its :class:`Study` and calls :func:`register_study`; importing
``transferability`` imports every study module, so the registry is complete by then. A
study with ``options`` gets its own ``transferability study NAME`` command (``--quick``,
the store and backend options, ``--out`` and ``--cache-dir`` come with it); one with a
``render`` gets its own section in the HTML report, the others a generic one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .._registry import Registry

__all__ = ["Study", "register_study", "get_study", "list_studies", "study_of_result"]


@dataclass(frozen=True)
class Study:
    """What every floor above the jobs needs to know about one study.

    ``name`` is its command (``transferability study NAME``) and the store's study label;
    ``title`` its report heading; ``result`` its :class:`~transferability._results.Result`
    type and ``kind`` the job kind of its final job. ``run(**settings, cache_dir=, store=,
    show_progress=, backend=, ...)`` runs it; ``full`` and ``quick`` are its settings (the
    keywords of ``run``); ``options(parser)`` adds its own CLI options and
    ``settings(args, defaults)`` turns them into ``run``'s keywords over ``defaults``.
    ``plots(result, out_dir)`` writes its figures; ``render(section_id, result)`` draws its
    HTML section body from the result object (the report reads the stored dict back with
    ``result.from_dict`` first; the pieces to draw with are in
    :mod:`transferability.html_report`: ``tables``, ``charts``, ``text``). ``colour`` holds
    the settings that replace those when the target is the colour task (``colour-*``):
    enough images and epochs for its models to learn it.
    """

    name: str
    title: str
    result: type
    kind: str
    run: Callable | None = None
    full: Mapping = field(default_factory=dict)
    quick: Mapping = field(default_factory=dict)
    tiny: Mapping = field(default_factory=dict)
    help: str = ""
    options: Callable[[argparse.ArgumentParser], None] | None = None
    settings: Callable[[argparse.Namespace, dict], dict] | None = None
    plots: Callable[[object, Path], list] | None = None
    render: Callable[[str, object], str] | None = None
    colour: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "full", MappingProxyType(dict(self.full)))
        object.__setattr__(self, "quick", MappingProxyType(dict(self.quick)))
        object.__setattr__(self, "tiny", MappingProxyType(dict(self.tiny)))
        object.__setattr__(self, "colour", MappingProxyType(dict(self.colour)))

    def for_target(self, settings: Mapping, target) -> dict:
        """``settings`` with :attr:`colour` over them when ``target`` is the colour task."""
        return {**settings, **(self.colour if str(target).startswith("colour-") else {})}


_STUDIES = Registry("study")


def register_study(study: Study) -> Study:
    """Add ``study`` to the registry (a second study of the same name is refused)."""
    return _STUDIES.register(study.name, study)


def get_study(name: str, argument: str = "study") -> Study:
    return _STUDIES.get(name, argument)


def list_studies() -> list[Study]:
    """Every registered study, in the order they were registered (the report's order)."""
    return _STUDIES.values()


def study_of_result(type_name: str) -> Study | None:
    """The study whose result type is called ``type_name`` (a stored dict's ``"type"``)."""
    return next((s for s in list_studies() if s.result.__name__ == type_name), None)
