"""One descriptor per study, one registry: the CLI, the demo, the HTML report and the job
store find studies here, never by name.

A study module builds its :class:`Study` and calls :func:`register_study`; importing
``transferability`` imports every study module, so the registry is complete by then. A
study with ``options`` gets its own ``transferability study NAME`` command (``--quick``,
the store and backend options, ``--out`` and ``--cache-dir`` come with it); one with a
``render`` gets its own section in the HTML report, the others a generic one. A study's
settings are a frozen :class:`Settings` dataclass, validated once when it is made;
``FULL``, ``QUICK`` and ``TINY`` are instances of it, and ``settings.replace(...)`` makes
a variant (checked again).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Self

from .._registry import Registry

__all__ = ["Settings", "Study", "register_study", "get_study", "list_studies",
           "study_of_result"]


@dataclass(frozen=True)
class Settings:
    """The base of every study's settings: a frozen dataclass whose fields are keywords of
    the study's ``run``, checked once in ``__post_init__`` (a bad value is a ``ValueError``
    naming its field). ``replace(**changes)`` makes a variant, checked again;
    ``keywords()`` gives the fields for ``run(**settings.keywords())``; ``to_dict()`` a
    JSON-ready copy; ``from_dict(mapping)`` the reverse, refusing missing or unknown names.
    """

    def replace(self, **changes) -> Self:
        """A copy with ``changes``; a name that is not a field is refused by name."""
        names = [f.name for f in fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"{unknown[0]}: not a setting of {type(self).__name__}; "
                             f"expected one of {', '.join(names)}")
        return dataclasses.replace(self, **changes)

    def keywords(self) -> dict:
        """The fields by name, as they are (for ``run(**settings.keywords())``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict:
        """The fields as JSON-ready values (tuples become lists, an
        :class:`~transferability.attacks.AttackSpec` its ``to_dict()``)."""
        return {name: _plain(value) for name, value in self.keywords().items()}

    @classmethod
    def from_dict(cls, mapping: Mapping) -> Self:
        """Settings from a complete mapping of every field (e.g. a stored ``to_dict()``)."""
        if not isinstance(mapping, Mapping):
            raise ValueError(f"settings: expected a {cls.__name__} or a dict, got "
                             f"{type(mapping).__name__}")
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - set(mapping)), sorted(set(mapping) - names)
        if missing or unknown:
            raise ValueError(f"settings: missing {missing}, unknown {unknown}; start from a "
                             f"copy of FULL or QUICK ({cls.__name__})")
        return cls(**mapping)

    def _set(self, name: str, value) -> None:
        """Store a checked (normalised) value from ``__post_init__``."""
        object.__setattr__(self, name, value)


def _plain(value):
    if hasattr(value, "to_dict"):  # an AttackSpec
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Study:
    """What every floor above the jobs needs to know about one study.

    ``name`` is its command (``transferability study NAME``) and the store's study label;
    ``title`` its report heading; ``result`` its :class:`~transferability._results.Result`
    type and ``kind`` the job kind of its final job. ``run(**settings.keywords(),
    cache_dir=, store=, show_progress=, backend=, ...)`` runs it; ``full``, ``quick`` and
    ``tiny`` (the demo's ``--quick``) are its :class:`Settings`, or None; ``options(parser)``
    adds its own CLI options and ``settings(args, defaults)`` returns ``defaults`` with them
    (``defaults.replace(...)``).
    How its result is shown (text, figures, the report's section) is registered apart, by
    :func:`~transferability.html_report.register_section` in its display module
    (``html_report/<study>.py``), so the study's job code holds no display. ``attack`` names
    the field of its settings that holds its :class:`~transferability.attacks.AttackSpec`:
    the CLI then gives the study the ``--attack --eps --steps --step-size --loss`` options,
    their help from ``full`` and ``quick``, and lays what is given over the settings' spec.
    ``colour`` holds the settings' fields that change when the target is the colour task
    (``colour-*``): enough images and epochs for its models to learn it.
    """

    name: str
    title: str
    result: type
    kind: str
    run: Callable | None = None
    full: Settings | None = None
    quick: Settings | None = None
    tiny: Settings | None = None
    help: str = ""
    options: Callable[[argparse.ArgumentParser], None] | None = None
    settings: Callable[[argparse.Namespace, Settings], Settings] | None = None
    attack: str | None = None
    colour: Mapping = field(default_factory=dict)

    def __post_init__(self):
        for name in ("full", "quick", "tiny"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Settings):
                raise ValueError(f"{name}: expected a Settings dataclass or None, got "
                                 f"{type(value).__name__}")
        object.__setattr__(self, "colour", MappingProxyType(dict(self.colour)))

    def for_target(self, settings: Settings | None, target) -> Settings | None:
        """``settings`` with :attr:`colour` over them when ``target`` is the colour task."""
        if settings is None or not self.colour or not str(target).startswith("colour-"):
            return settings
        return settings.replace(**self.colour)


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
