"""Where every generated class lives: modules and names, allocated before any file is built.

:class:`Plan` walks the model once, in a fixed order, and gives each element one
:class:`Symbols` record: its class (a message, value or enum), or for an aggregate,
external system, policy or view the classes generated for it (base, state, row, the
user's subclass, a system's constants). Names are made unique per module, so the
builders only look them up.
"""

from __future__ import annotations

from dataclasses import dataclass

from stormgen.model.nodes import Aggregate, Context, External, Model
from stormgen.render.python.modules import Module, Symbol
from stormgen.render.python.names import Namespace, snake_case

#: What a role an element has no symbol for points at.
NOWHERE = Symbol("", "")


@dataclass(slots=True)
class Symbols:
    """The generated names of one model element (each role it has)."""

    cls: Symbol = NOWHERE  # a command, event, value or enum class
    base: Symbol = NOWHERE  # <Aggregate>Base, <Policy>Base, <View>Base, Fake<System>
    user: Symbol = NOWHERE  # the user's subclass in custom/
    state: Symbol = NOWHERE  # <Aggregate>State
    row: Symbol = NOWHERE  # <View>Row
    system: Symbol = NOWHERE  # an external system's SYSTEM constant
    events: Symbol = NOWHERE  # an external system's EVENTS constant


class Plan:
    """The modules of the project and the symbols of every element of the model."""

    def __init__(self, model: Model, package: str) -> None:
        self.model = model
        self.package = package
        self.modules: dict[str, Module] = {}
        #: context name -> its package (dotted)
        self.context_packages: dict[str, str] = {}
        #: each context once: a context declared twice (E101) is checked, not generated
        self.contexts: tuple[Context, ...] = _first_of_each(model)
        # keyed by identity: model nodes are values, and two may be equal
        self._symbols: dict[int, Symbols] = {}
        self._allocate()

    def of(self, element: object) -> Symbols:
        """The symbols of a model element."""
        return self._symbols[id(element)]

    def module(self, dotted: str) -> Module:
        """The name space of a generated module (one per dotted name)."""
        found = self.modules.get(dotted)
        if found is None:
            found = self.modules[dotted] = Module(dotted, self.package)
        return found

    def _place(self, element: object, role: str, module: str, wanted: str) -> None:
        name = self.module(module).define(wanted, (id(element), wanted))
        record = self._symbols.get(id(element))
        if record is None:
            record = self._symbols[id(element)] = Symbols()
        setattr(record, role, Symbol(module, name))

    def _allocate(self) -> None:
        pkg = self.package
        top = Namespace()
        for fixed in ("app", "shared", "tests", "__init__", "__main__"):
            top.claim(fixed, fixed)
        for v in self.model.values:
            self._place(v, "cls", f"{pkg}.shared", v.name)
        for e in self.model.enums:
            self._place(e, "cls", f"{pkg}.shared", e.name)
        for context in self.contexts:
            ctx_pkg = top.claim(snake_case(context.name), context.name)
            if ctx_pkg != snake_case(context.name):
                ctx_pkg = top.claim(snake_case(context.name) + "_context", context.name)
            self.context_packages[context.name] = f"{pkg}.{ctx_pkg}"
            self._context(context, f"{pkg}.{ctx_pkg}")

    def _messages(self, owner: Aggregate | External, inner: Namespace, base: str, kind: str) -> str:
        """Claim the module of an aggregate or a system; place its commands and events."""
        leaf = claim_module(inner, owner.name, id(owner), kind)
        for cmd in owner.commands:
            self._place(cmd, "cls", f"{base}.{leaf}", cmd.name)
        for ev in owner.events:
            self._place(ev, "cls", f"{base}.{leaf}", ev.name)
        return leaf

    def _context(self, context: Context, base: str) -> None:
        inner = Namespace()
        for fixed in ("types", "policies", "views", "custom", "__init__", "__main__"):
            inner.claim(fixed, fixed)
        for v in context.values:
            self._place(v, "cls", f"{base}.types", v.name)
        for e in context.enums:
            self._place(e, "cls", f"{base}.types", e.name)
        custom = Namespace()
        custom.claim("__init__", "__init__")
        for agg in context.aggregates:
            leaf = self._messages(agg, inner, base, "aggregate")
            mod = f"{base}.{leaf}"
            self._place(agg, "state", mod, agg.name + "State")
            self._place(agg, "base", mod, agg.name + "Base")
            self._place(agg, "user", f"{base}.custom.{leaf}", agg.name)
        for ext in context.externals:
            leaf = self._messages(ext, inner, base, "system")
            mod = f"{base}.{leaf}"
            self._place(ext, "system", mod, "SYSTEM")
            self._place(ext, "events", mod, "EVENTS")
            self._place(ext, "base", mod, "Fake" + ext.name)
            self._place(ext, "user", f"{base}.custom.{leaf}", ext.name + "Adapter")
        for owner in (*context.aggregates, *context.externals):
            custom.claim(self.of(owner).user.module.rsplit(".", 1)[1], id(owner))
        for pol in context.policies:
            self._place(pol, "base", f"{base}.policies", pol.name + "Base")
            leaf = claim_module(custom, pol.name, id(pol), "policy")
            self._place(pol, "user", f"{base}.custom.{leaf}", pol.name)
        for process in context.processes:
            leaf = claim_module(inner, process.name, id(process), "process")
            self._place(process, "state", f"{base}.{leaf}", process.name + "State")
            self._place(process, "base", f"{base}.{leaf}", process.name + "Base")
            leaf = claim_module(custom, process.name, id(process), "process")
            self._place(process, "user", f"{base}.custom.{leaf}", process.name)
        for view in context.views:
            self._place(view, "row", f"{base}.views", view.name + "Row")
            self._place(view, "base", f"{base}.views", view.name + "Base")
            leaf = claim_module(custom, view.name, id(view), "view")
            self._place(view, "user", f"{base}.custom.{leaf}", view.name)


def claim_module(ns: Namespace, name: str, owner: object, suffix: str) -> str:
    """A module name for ``name`` in ``ns``: its snake case, else with ``_suffix``."""
    wanted = snake_case(name)
    got = ns.claim(wanted, owner)
    if got != wanted:
        got = ns.claim(f"{wanted}_{suffix}", owner)
    return got


def _first_of_each(model: Model) -> tuple[Context, ...]:
    seen: set[str] = set()
    out = []
    for c in model.contexts:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return tuple(out)
