"""A name → factory registry (timm-style), shared by models and attacks."""

from __future__ import annotations

from collections.abc import Callable

from ._validation import check_choice

__all__ = ["Registry"]


class Registry:
    """Factories by name: ``register(name)`` decorates, ``get(name)`` looks up, ``names()``
    lists. Unknown names get the library's one error, naming the argument and the choices."""

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, Callable] = {}

    def register(self, name: str):
        def decorator(fn):
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} is already registered")
            self._items[name] = fn
            return fn
        return decorator

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str, argument: str = "name") -> Callable:
        return self._items[check_choice(name, argument, self._items)]
