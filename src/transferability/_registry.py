"""A name → object registry (timm-style), shared by models, attacks, estimators and datasets."""

from __future__ import annotations

from ._validation import check_choice

__all__ = ["Registry"]


class Registry:
    """Objects (factories, estimators, dataset descriptions) by name.

    ``register(name)`` decorates, ``register(name, obj)`` adds directly, ``get(name)`` looks
    up and ``names()`` lists them sorted. Unknown names get the library's one error, naming
    the argument and the choices.
    """

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, object] = {}

    def register(self, name: str, obj=None):
        def add(item):
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"name: {self.what} {name!r} is already registered")
            self._items[name] = item
            return item
        return add if obj is None else add(obj)

    def names(self) -> list[str]:
        return sorted(self._items)

    def values(self) -> list:
        """The registered objects, in the order they were registered."""
        return list(self._items.values())

    def get(self, name: str, argument: str = "name"):
        return self._items[check_choice(name, argument, self._items)]

    def __contains__(self, name: object) -> bool:
        return name in self._items
