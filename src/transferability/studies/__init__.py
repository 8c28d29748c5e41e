"""One descriptor per study, one registry: the CLI, the demo, the HTML report and the job
store find studies here, never by name.

A study module builds its :class:`Study` and calls :func:`register_study`; importing
``transferability`` imports every study module, so the registry is complete by then. A
study's parameters are stated once, as the fields of its frozen :class:`Settings`
dataclass, each declared with :func:`setting`: its default, its rule (a
:class:`~transferability._validation.Constraint`) and its help. From that one declaration
the settings are checked when made, the ``transferability study NAME`` command gets one
option per field (``--quick``, the store, backend and device options, ``--out`` and
``--cache-dir`` come with it), and the tests of every bad value are generated. ``FULL``,
``QUICK`` and ``TINY`` are instances of it, and ``settings.replace(...)`` makes a variant
(checked again). Every study runs as ``study.run(settings, *, store=, backend=,
device=, ...)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Self

from .._registry import Registry
from .._validation import Constraint

__all__ = ["Settings", "setting", "Study", "register_study", "get_study", "list_studies"]


def setting(default, rule: Constraint, help: str = "", *, option: bool = True):
    """A field of a study's :class:`Settings`, declared once: its ``default``, its ``rule``
    (checked whenever settings are made) and its ``help``; ``option=False`` keeps it off
    the command line."""
    if not isinstance(rule, Constraint):
        raise ValueError(f"rule: expected a Constraint, got {rule!r}")
    metadata = {"rule": rule, "help": help, "option": option}
    if isinstance(default, Mapping):  # a fresh dict per instance
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """The base of every study's settings: a frozen dataclass of :func:`setting` fields,
    each checked by its rule when the settings are made (a bad value is a ``ValueError``
    naming its field), then :meth:`check` for rules between fields.
    ``replace(**changes)`` makes a variant, checked again; ``keywords()`` gives the fields
    by name; ``to_dict()`` a JSON-ready copy; ``from_dict(mapping)`` the reverse, refusing
    missing or unknown names; ``declared()`` the fields with their rules.
    """

    def __post_init__(self):
        for f in self.declared():
            self._set(f.name, f.metadata["rule"].check(getattr(self, f.name), f.name))
        self.check()

    def check(self) -> None:
        """Rules between fields (a subclass's own); each field's rule has passed already."""

    @classmethod
    def declared(cls) -> list[dataclasses.Field]:
        """The fields declared with a rule (:func:`setting`), in order."""
        return [f for f in fields(cls) if "rule" in f.metadata]

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
    type and ``kind`` the job kind of its final job. ``run(settings, *, store=, cache_dir=,
    backend=, device=, show_progress=, **backend_options)`` runs it; ``full``, ``quick``
    and ``tiny`` (the demo's ``--quick``) are its :class:`Settings`; the command's options
    come from their declared fields. ``aliases`` are older command names that still run it
    (``transferability benchmark`` for ``transferability study benchmark``); ``read(path)``
    reads settings from a file, given as ``read_option`` (the audit's ``--protocol``), over
    which the options given are laid. How its result
    is shown (text, files, the report's section) is registered apart, by
    :func:`~transferability.html_report.register_section` in its display module
    (``html_report/<study>.py``), so the study's job code holds no display. ``by_family``
    holds, per dataset family (:attr:`~transferability.data.DatasetInfo.family`), the
    settings' fields that change when the target is of that family (the colour tasks:
    enough images and epochs for its models to learn them).
    """

    name: str
    title: str
    result: type
    kind: str
    run: Callable
    full: Settings
    quick: Settings | None = None
    tiny: Settings | None = None
    help: str = ""
    aliases: tuple[str, ...] = ()
    read: Callable[[str], Settings] | None = None
    read_option: str = "--settings"
    by_family: Mapping[str, Mapping] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.full, Settings):
            raise ValueError(f"full: expected a Settings dataclass, got "
                             f"{type(self.full).__name__}")
        for name in ("quick", "tiny"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Settings):
                raise ValueError(f"{name}: expected a Settings dataclass or None, got "
                                 f"{type(value).__name__}")
        if not callable(self.run):
            raise ValueError(f"run: expected a function run(settings, *, store, backend, "
                             f"device), got {self.run!r}")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "by_family", MappingProxyType(
            {k: MappingProxyType(dict(v)) for k, v in self.by_family.items()}))

    def for_target(self, settings: Settings | None, target) -> Settings | None:
        """``settings`` with :attr:`by_family`'s changes for ``target``'s family over them."""
        from ..data import family_of

        changes = self.by_family.get(family_of(target)) if settings is not None else None
        return settings.replace(**changes) if changes else settings


_STUDIES = Registry("study")


def register_study(study: Study) -> Study:
    """Add ``study`` to the registry (a second study of the same name is refused)."""
    return _STUDIES.register(study.name, study)


def get_study(name: str, argument: str = "study") -> Study:
    return _STUDIES.get(name, argument)


def list_studies() -> list[Study]:
    """Every registered study, in the order they were registered (the report's order)."""
    return _STUDIES.values()

