"""`UNSET`: the value of a state field that has no default until an event sets it.

The language: "a field with no default and no `?` starts as unset and reading it
before an event sets it is a runtime error". Using `UNSET` in a comparison, arithmetic,
`len`, `str`, truth test or attribute access raises `UnsetFieldError`; it encodes as
`null` and snapshots leave it out.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from stormgen.runtime.rejections import DomainError


class UnsetFieldError(DomainError):
    """A state field was read before any event set it (a modelling mistake)."""


class _Unset:
    """The one unset value; every use but identity checks and repr raises."""

    __slots__ = ()
    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "UNSET"

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: Any) -> _Unset:
        return self

    def _fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UnsetFieldError("a state field was read before any event set it")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __neg__ = __len__ = __iter__ = __contains__ = _fail
    __bool__ = __str__ = __int__ = __float__ = __index__ = _fail
    __hash__ = object.__hash__

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()


UNSET: Any = _Unset()
"""The unset value (typed `Any` so it can be any field's default)."""


def is_unset(value: object) -> bool:
    """Whether a value is `UNSET` (safe: an identity check)."""
    return value is UNSET


T = TypeVar("T")


def present(value: T | None, name: str) -> T:
    """``value``, which a ``require NAME != none`` of the command already proved is not
    none (the generated code says so where a later line reads it); `UnsetFieldError` if
    it is none after all (a handler overridden without that guard)."""
    if value is None:
        raise UnsetFieldError(f"{name} is none, though a guard required it")
    return value
