"""One generated Python module's names and imports, computed before rendering.

A :class:`Module` hands out the local names of the classes it defines and of what it
imports, so that two contexts' ``OrderPaid`` events (or a model value called
``Decimal``) can meet in one module without shadowing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stormgen.render.python.names import Namespace

#: Modules of the standard library that generated code imports from.
STDLIB = frozenset({"dataclasses", "datetime", "decimal", "enum", "typing", "uuid", "argparse"})
STDLIB |= frozenset({"collections.abc", "os", "re", "sys"})


@dataclass(frozen=True, slots=True)
class Symbol:
    """Where a generated class lives: its module (dotted) and its name there."""

    module: str
    name: str


class Module:
    """The local name space of one generated module."""

    def __init__(self, dotted: str, first_party: str) -> None:
        self.dotted = dotted
        self.first_party = first_party
        self.ns = Namespace()
        # (module, name) -> local alias
        self._imports: dict[tuple[str, str], str] = {}
        # imported for annotations only, under `if TYPE_CHECKING:` (an import cycle at
        # run time: a view's module imports the aggregate modules whose guards read it)
        self._typing: dict[tuple[str, str], str] = {}

    def define(self, wanted: str, owner: object) -> str:
        """Claim a local class name for something this module defines."""
        return self.ns.claim(wanted, owner)

    def use(self, symbol: Symbol, alias_hint: str = "") -> str:
        """The local name of ``symbol`` in this module, importing it when it lives elsewhere."""
        if symbol.module == self.dotted:
            return symbol.name
        key = (symbol.module, symbol.name)
        found = self._imports.get(key)
        if found is not None:
            return found
        if not self.ns.taken(symbol.name):
            local = self.ns.claim(symbol.name, key)
        else:
            local = self.ns.claim(alias_hint + symbol.name, key)
        self._imports[key] = local
        return local

    def use_for_typing(self, symbol: Symbol) -> str:
        """The local name of ``symbol``, imported for annotations only."""
        if symbol.module == self.dotted:
            return symbol.name
        key = (symbol.module, symbol.name)
        found = self._imports.get(key) or self._typing.get(key)
        if found is None:
            found = self._typing[key] = self.ns.claim(symbol.name, key)
            self.std("typing", "TYPE_CHECKING")
        return found

    def use_as(self, symbol: Symbol, wanted: str) -> str:
        """Import ``symbol`` under a chosen local name (made unique)."""
        key = (symbol.module, symbol.name)
        found = self._imports.get(key)
        if found is None:
            found = self._imports[key] = self.ns.claim(wanted, key)
        return found

    def std(self, module: str, name: str) -> str:
        """Import a standard-library (or runtime) name under its own name."""
        key = (module, name)
        self._imports[key] = name
        return name

    def import_lines(self) -> list[str]:
        """``from x import a, b as c`` lines grouped like isort: stdlib, third-party, own."""
        groups: list[list[str]] = [[], [], []]
        for module, found in _from_lines(self._imports.items()):
            root = module.split(".")[0]
            if module in STDLIB or root in STDLIB:
                groups[0].extend(found)
            elif root == self.first_party:
                groups[2].extend(found)
            else:
                groups[1].extend(found)
        lines: list[str] = []
        for group in groups:
            if group:
                if lines:
                    lines.append("")
                lines.extend(group)
        typing = [(k, v) for k, v in self._typing.items() if k not in self._imports]
        if typing:
            lines += ["", "if TYPE_CHECKING:"]
            lines += [f"    {line}" for _, found in _from_lines(typing) for line in found]
        return lines


def _from_lines(
    imports: Iterable[tuple[tuple[str, str], str]],
) -> list[tuple[str, list[str]]]:
    """Each module of ``imports`` ((module, name) -> local) in isort's order, with its
    ``from`` lines: the plain names on one line, then one line per alias."""
    by_module: dict[str, list[tuple[str, str]]] = {}
    for (module, name), local in imports:
        by_module.setdefault(module, []).append((name, local))
    out: list[tuple[str, list[str]]] = []
    for module in sorted(by_module, key=_module_key):
        names = sorted(by_module[module], key=lambda pair: _name_key(pair[0]))
        plain = [name for name, local in names if name == local]
        found = [f"from {module} import {', '.join(plain)}"] if plain else []
        found += [f"from {module} import {n} as {local}" for n, local in names if n != local]
        out.append((module, found))
    return out


def _module_key(module: str) -> tuple[str, str]:
    return (module.lower(), module)


def _name_key(name: str) -> tuple[int, str, str]:
    # isort's order-by-type: CONSTANTS, then Classes, then functions and variables.
    if name.isupper() and len(name) > 1:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return (kind, name.lower(), name)
