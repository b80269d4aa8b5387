"""Which method of a definition handles which message class.

A method marked ``@on_command(PlaceOrder)``, ``@on_event(OrderPaid)`` or
``@key_for(OrderPaid)`` is found by the base classes (`Aggregate.decide`, `apply`,
`evolve`, `View.update`, `View.key_of`, `FakePort.send`) through a registry built once
per class: a dict from message class to method name, looked up by the message's exact
class first, then by its bases (as `isinstance` would), the answer cached. The method
is called by name, so a subclass that overrides it (without marking it again) is the
one called.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Found", "Handlers", "handlers", "key_for", "on_command", "on_event"]

M = TypeVar("M", bound=Callable[..., Any])

#: the attribute on a marked function: ((role, message class), ...)
_MARK = "__stormgen_handles__"
#: the attribute on a definition class holding its registry (never inherited)
_REGISTRY = "__stormgen_handlers__"


def _marker(role: str, message: type) -> Callable[[M], M]:
    def mark(method: M) -> M:
        setattr(method, _MARK, (*getattr(method, _MARK, ()), (role, message)))
        return method

    return mark


def on_command(command: type) -> Callable[[M], M]:
    """Mark the method that handles ``command`` (an aggregate's or an adapter's)."""
    return _marker("command", command)


def on_event(event: type) -> Callable[[M], M]:
    """Mark the method that applies ``event`` to a state or a view's row."""
    return _marker("event", event)


def key_for(event: type) -> Callable[[M], M]:
    """Mark the method that picks the key of the row ``event`` updates (a view's `by`)."""
    return _marker("key", event)


@dataclass(frozen=True, slots=True)
class Found:
    """A handler: the method's name and how many arguments it takes after ``self``."""

    name: str
    arity: int


class Handlers:
    """The marked methods of one class (its bases' included), by role and message class."""

    def __init__(self, cls: type) -> None:
        # role -> message class -> handler, then the same with every class looked up
        self._tables: dict[str, dict[type, Found]] = {}
        self._caches: dict[str, dict[type, Found | None]] = {}
        for klass in reversed(cls.__mro__):
            own: dict[tuple[str, type], str] = {}
            for name, value in vars(klass).items():
                for key in getattr(value, _MARK, ()):
                    own.setdefault(key, name)  # in one class, the first marked wins
            for (role, message), name in own.items():
                table = self._tables.setdefault(role, {})
                table[message] = Found(name, _arity(getattr(cls, name)))
        self.roles = frozenset(self._tables)

    def find(self, role: str, message: type) -> Found | None:
        """The handler of ``message`` (or of its nearest base class) in ``role``, if any."""
        cache = self._caches.get(role)
        if cache is None:
            cache = self._caches[role] = {}
        elif message in cache:
            return cache[message]
        table = self._tables.get(role, {})
        found = None
        for klass in message.__mro__:
            found = table.get(klass)
            if found is not None:
                break
        cache[message] = found
        return found


def handlers(cls: type) -> Handlers:
    """The registry of ``cls``, built on first use."""
    registry: Handlers | None = cls.__dict__.get(_REGISTRY)
    if registry is None:
        registry = Handlers(cls)
        setattr(cls, _REGISTRY, registry)
    return registry


def _arity(method: Any) -> int:
    """The number of arguments a method takes after ``self``."""
    params = list(inspect.signature(method).parameters.values())
    return len(params) - 1
