"""Turn one file's parse result into the frozen dataclasses of the model.

The input is the objects :mod:`stormgen.lang.tree` reads from the textX parse tree
(shaped like textX's own model objects: one class per grammar rule, attributes named
as in the grammar, ``_tx_position``). Nothing of the parser survives this module:
every element becomes a node of :mod:`stormgen.model.nodes`, located at
``file:line:col`` where it is written.
Mistakes the grammar cannot see (a second ``id`` line, a view without ``key``,
``a < b < c``) are collected as E001 diagnostics.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.lang.expressions import Chain, ChainedComparison
from stormgen.model import nodes as n
from stormgen.model.naming import snake_case

_UNESCAPE = re.compile(r"\\(.)")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


def unescape(quoted: str) -> str:
    """The text of a string literal: quotes dropped, ``\\"``, ``\\\\``, ``\\n`` decoded.

    Any other backslash sequence is kept as written (as Python does).
    """
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group()), body)


@dataclass
class FileParts:
    """What one file contributes to the model."""

    header_name: str | None = None
    header_desc: str | None = None
    header_loc: Location | None = None
    imports: list[tuple[str, Location]] = field(default_factory=list)
    actors: list[n.Actor] = field(default_factory=list)
    values: list[n.Value] = field(default_factory=list)
    enums: list[n.Enum] = field(default_factory=list)
    contexts: list[n.Context] = field(default_factory=list)
    maps: list[n.ContextMap] = field(default_factory=list)
    scenarios: list[n.Scenario] = field(default_factory=list)


class Builder:
    """Build the nodes of one file; ``diagnostics`` collects what the grammar let through.

    It stays one class: one short method per grammar rule, in the grammar's order, each
    calling the others for its parts and sharing only the location and diagnostics
    helpers, so a rule's method is found where the grammar has the rule.
    """

    def __init__(self, display: str, line_starts: list[int]) -> None:
        self.file = display
        self._starts = line_starts
        self.diagnostics: list[Diagnostic] = []

    # ------------------------------------------------------------ helpers

    def loc(self, obj: Any) -> Location:
        # The commonest call of the builder: a bisection over the line starts.
        pos: int = obj._tx_position
        line = bisect_right(self._starts, pos)
        return Location(self.file, line, pos - self._starts[line - 1] + 1)

    def error(self, message: str, loc: Location) -> None:
        self.diagnostics.append(Diagnostic("E001", Level.ERROR, message, loc))

    @staticmethod
    def text(value: str | None) -> str | None:
        return None if value is None else unescape(value)

    def ref(self, obj: Any) -> n.Ref:
        return n.Ref(obj.name, self.loc(obj))

    # ------------------------------------------------------------ file

    def file_parts(self, model: Any) -> FileParts:
        parts = FileParts()
        header = model.header
        if header is not None:
            parts.header_name = header.name
            parts.header_desc = self.text(header.description)
            parts.header_loc = self.loc(header)
        for item in model.items:
            kind = type(item).__name__
            if kind == "Import":
                parts.imports.append((unescape(item.path), self.loc(item)))
            elif kind == "Actor":
                parts.actors.append(self.actor(item))
            elif kind == "Value":
                parts.values.append(self.value(item))
            elif kind == "Enum":
                parts.enums.append(self.enum(item))
            elif kind == "Context":
                parts.contexts.append(self.context(item))
            elif kind == "Scenario":
                parts.scenarios.append(self.scenario(item))
            else:
                parts.maps.append(self.context_map(item))
        return parts

    # ------------------------------------------------------------ types and fields

    def type_ref(self, obj: Any) -> n.TypeRef:
        loc = self.loc(obj)
        if obj.element is not None:
            return n.TypeRef("list", loc, self.type_ref(obj.element), bool(obj.optional))
        name: str = obj.name
        if name.endswith("?"):
            return n.TypeRef(name[:-1], loc, None, True)
        return n.TypeRef(name, loc)

    def field(self, obj: Any) -> n.Field:
        default = obj.default
        return n.Field(
            name=obj.name,
            type=self.type_ref(obj.type),
            loc=self.loc(obj),
            default=None if default is None else self.default(default),
            pii=bool(obj.pii),
            was=obj.was or None,
            description=self.text(obj.description),
        )

    def fields(self, objs: list[Any]) -> tuple[n.Field, ...]:
        return tuple(self.field(f) for f in objs)

    def default(self, obj: Any) -> n.Expr:
        kind = type(obj).__name__
        if kind == "Atom":
            return self.atom(obj.atom, self.loc(obj))
        if kind == "DurationDefault":
            return n.Call(obj.unit, (self.default(obj.amount),), self.loc(obj))
        if kind == "NegativeNumber":
            # A default is a literal: `-3` is kept as the negative number itself.
            lit = self.atom(obj.value, self.loc(obj))
            assert isinstance(lit, n.Literal) and isinstance(lit.value, int | Decimal)
            return n.Literal(-lit.value, lit.kind, lit.loc)
        return n.ListExpr(tuple(self.default(i) for i in obj.items), self.loc(obj))

    def actor(self, obj: Any) -> n.Actor:
        return n.Actor(obj.name, self.loc(obj), self.text(obj.description))

    def value(self, obj: Any) -> n.Value:
        return n.Value(obj.name, self.fields(obj.fields), self.loc(obj), self.text(obj.description))

    def enum(self, obj: Any) -> n.Enum:
        members = tuple(n.EnumMember(m.name, self.loc(m)) for m in obj.members)
        return n.Enum(obj.name, members, self.loc(obj), self.text(obj.description))

    def hotspot(self, obj: Any) -> n.Hotspot:
        return n.Hotspot(unescape(obj.text), self.loc(obj))

    # ------------------------------------------------------------ expressions

    def atom(self, text: str, loc: Location) -> n.Expr:
        first = text[0]
        if first.isdigit():
            if "." in text:
                return n.Literal(Decimal(text), "decimal", loc)
            return n.Literal(int(text), "int", loc)
        if first == '"':
            return n.Literal(unescape(text), "str", loc)
        if text == "true":
            return n.Literal(True, "bool", loc)
        if text == "false":
            return n.Literal(False, "bool", loc)
        if text == "none":
            return n.Literal(None, "none", loc)
        return n.Name(tuple(text.split(".")), loc)

    def expr(self, obj: Any) -> n.Expr:
        cond = getattr(obj, "cond", None)
        body = self.chain(obj)
        if cond is None:
            return body
        return n.Conditional(body, self.chain(cond.test), self.expr(cond.orelse), body.loc)

    def comprehension(
        self, items: tuple[n.Expr, ...], gen: Any, loc: Location, where: str
    ) -> n.Comprehension:
        if len(items) != 1:
            self.error(f"`for` in {where} follows exactly one expression", self.loc(gen))
        element = items[0] if items else n.Literal(None, "none", loc)
        return n.Comprehension(
            element,
            gen.var,
            self.chain(gen.source),
            loc,
            None if gen.condition is None else self.chain(gen.condition),
            self.loc(gen),
        )

    def let(self, obj: Any, after: int) -> n.Let:
        return n.Let(obj.name, self.expr(obj.value), self.loc(obj), after)

    def chain(self, obj: Any) -> n.Expr:
        rest = obj.rest
        if not rest:
            return self.operand(obj.first)
        operands = [obj.first, *(b.operand for b in rest)]
        chain = Chain(operands, rest, self.operand, self.prefixed, self.loc)
        try:
            return chain.parse()
        except ChainedComparison as exc:
            self.error(str(exc), exc.loc)
            return n.Literal(None, "none", self.loc(obj))

    def prefixed(self, obj: Any) -> tuple[str, Any, Location] | None:
        if type(obj).__name__ != "Prefixed":
            return None
        return obj.op, obj.operand, self.loc(obj)

    def operand(self, obj: Any) -> n.Expr:
        kind = type(obj).__name__
        loc = self.loc(obj)
        if kind == "NameOrCall":
            if obj.call is None:
                return self.atom(obj.atom, loc)
            args = tuple(self.expr(a) for a in obj.call.args)
            name: str = obj.atom
            if not (name[0].isalpha() or name[0] == "_") or "." in name:
                self.error(f"only a built-in function can be called, not '{name}'", loc)
            if obj.call.gen is not None:
                start = args[0].loc if args else loc
                gen = self.comprehension(args, obj.call.gen, start, "a call")
                args = (replace(gen, generator=True),)
            return n.Call(name, args, loc)
        if kind == "Expr":  # parenthesised
            return self.expr(obj)
        if kind == "ListLit":
            items = tuple(self.expr(i) for i in obj.items)
            if obj.gen is not None:
                return self.comprehension(items, obj.gen, loc, "a list")
            return n.ListExpr(items, loc)
        if kind == "Construction":
            ref = n.Ref(obj.type, loc)
            return n.Construction(ref, self.assignments(obj.assignments), loc)
        if kind == "Lookup":
            path = tuple(p.name for p in obj.path)
            return n.Lookup(n.Ref(obj.view, loc), self.expr(obj.key), loc, path)
        # A lone prefixed operand: `-x`, `not done`.
        return Chain([obj], [], self.operand, self.prefixed, self.loc).parse()

    def assignments(self, objs: list[Any]) -> tuple[n.Assignment, ...]:
        return tuple(n.Assignment(a.target, a.op, self.expr(a.value), self.loc(a)) for a in objs)

    def on_lines(self, objs: list[Any]) -> tuple[tuple[n.Assignment, ...], tuple[n.Let, ...]]:
        """A view handler's block: its assignments and its ``let`` lines, in order."""
        assignments: list[n.Assignment] = []
        lets: list[n.Let] = []
        for a in objs:
            if type(a).__name__ == "Let":
                lets.append(self.let(a, len(assignments)))
            else:
                assignments.append(n.Assignment(a.target, a.op, self.expr(a.value), self.loc(a)))
        return tuple(assignments), tuple(lets)

    # ------------------------------------------------------------ aggregates

    def command(self, obj: Any) -> n.Command:
        fields: list[n.Field] = []
        requires: list[n.Require] = []
        lets: list[n.Let] = []
        emits: list[n.Emit] = []
        hotspots: list[n.Hotspot] = []
        for m in obj.members:
            kind = type(m).__name__
            if kind == "Field":
                fields.append(self.field(m))
            elif kind == "Require":
                requires.append(n.Require(self.expr(m.condition), unescape(m.message), self.loc(m)))
            elif kind == "Let":
                lets.append(self.let(m, len(requires)))
            elif kind == "Emit":
                emits.append(
                    n.Emit(
                        self.ref(m.event),
                        self.loc(m),
                        self.assignments(m.assignments),
                        None if m.condition is None else self.expr(m.condition),
                    )
                )
            else:
                hotspots.append(self.hotspot(m))
        return n.Command(
            name=obj.name,
            fields=tuple(fields),
            loc=self.loc(obj),
            actors=tuple(self.ref(a) for a in obj.actors),
            creates=bool(obj.creates),
            description=self.text(obj.description),
            requires=tuple(requires),
            emits=tuple(emits),
            hotspots=tuple(hotspots),
            lets=tuple(lets),
        )

    def event(self, obj: Any) -> n.Event:
        fields: list[n.Field] = []
        apply: list[n.Assignment] = []
        hotspots: list[n.Hotspot] = []
        for m in obj.members:
            kind = type(m).__name__
            if kind == "Field":
                fields.append(self.field(m))
            elif kind == "Apply":
                apply.extend(self.assignments(m.assignments))
            else:
                hotspots.append(self.hotspot(m))
        return n.Event(
            name=obj.name,
            fields=tuple(fields),
            loc=self.loc(obj),
            published=bool(obj.published),
            version=int(obj.version[1:]) if obj.version else 1,
            description=self.text(obj.description),
            apply=tuple(apply),
            hotspots=tuple(hotspots),
        )

    def aggregate(self, obj: Any) -> n.Aggregate:
        loc = self.loc(obj)
        id_field: n.Field | None = None
        snapshot: int | None = None
        state: list[n.Field] = []
        commands: list[n.Command] = []
        events: list[n.Event] = []
        hotspots: list[n.Hotspot] = []
        for m in obj.members:
            kind = type(m).__name__
            if kind == "Command":
                commands.append(self.command(m))
            elif kind == "Event":
                events.append(self.event(m))
            elif kind == "StateBlock":
                # Several state blocks read as one, in order.
                state.extend(self.fields(m.fields))
            elif kind == "IdDecl":
                if id_field is not None:
                    self.error(f"aggregate {obj.name} has a second `id` line", self.loc(m))
                else:
                    id_field = self.field(m.field)
            elif kind == "Snapshot":
                if snapshot is not None:
                    self.error(f"aggregate {obj.name} has a second `snapshot` line", self.loc(m))
                else:
                    snapshot = int(m.every)
            else:
                hotspots.append(self.hotspot(m))
        declared = id_field is not None
        if id_field is None:
            id_field = n.Field(f"{snake_case(obj.name)}_id", n.TypeRef("uuid", loc), loc)
        return n.Aggregate(
            name=obj.name,
            id_field=id_field,
            loc=loc,
            id_declared=declared,
            description=self.text(obj.description),
            snapshot_every=snapshot,
            state=tuple(state),
            commands=tuple(commands),
            events=tuple(events),
            hotspots=tuple(hotspots),
        )

    # ------------------------------------------------------------ flow

    def external(self, obj: Any) -> n.External:
        commands = tuple(self.command(m) for m in obj.members if type(m).__name__ == "Command")
        events = tuple(self.event(m) for m in obj.members if type(m).__name__ == "Event")
        return n.External(obj.name, self.loc(obj), self.text(obj.description), commands, events)

    def then(self, obj: Any) -> n.Then:
        loc = self.loc(obj)
        fan = None
        if obj.fan is not None:
            # The element of a fan-out is the command itself: a placeholder here.
            fan = self.comprehension((n.Literal(None, "none", loc),), obj.fan, loc, "a `then`")
        return n.Then(
            self.ref(obj.command),
            loc,
            self.assignments(obj.assignments),
            None if obj.condition is None else self.expr(obj.condition),
            fan,
        )

    def policy(self, obj: Any) -> n.Policy:
        thens = tuple(self.then(t) for t in obj.thens)
        return n.Policy(
            name=obj.name,
            when=self.ref(obj.when),
            thens=thens,
            loc=self.loc(obj),
            condition=None if obj.condition is None else self.expr(obj.condition),
            description=self.text(obj.description),
            hotspots=tuple(self.hotspot(h) for h in obj.hotspots),
        )

    def view(self, obj: Any) -> n.View:
        loc = self.loc(obj)
        key: n.Field | None = None
        fields: list[n.Field] = []
        handlers: list[n.On] = []
        hotspots: list[n.Hotspot] = []
        order: list[n.OrderKey] = []
        for m in obj.members:
            kind = type(m).__name__
            if kind == "Field":
                fields.append(self.field(m))
            elif kind == "On":
                assignments, lets = self.on_lines(m.assignments)
                handlers.append(
                    n.On(
                        self.ref(m.event),
                        self.loc(m),
                        None if m.by is None else self.expr(m.by),
                        assignments,
                        bool(m.delete),
                        lets,
                        None if m.condition is None else self.expr(m.condition),
                    )
                )
            elif kind == "Key":
                if key is not None:
                    self.error(f"view {obj.name} has a second `key` line", self.loc(m))
                else:
                    key = self.field(m.field)
            elif kind == "Order":
                if order:
                    self.error(f"view {obj.name} has a second `order by` line", self.loc(m))
                order = [n.OrderKey(k.field, self.loc(k), bool(k.desc)) for k in m.keys]
            else:
                hotspots.append(self.hotspot(m))
        if key is None:
            self.error(f"view {obj.name} has no `key` line (e.g. `key order_id: uuid`)", loc)
            key = n.Field("key", n.TypeRef("uuid", loc), loc)
        return n.View(
            name=obj.name,
            key=key,
            loc=loc,
            fields=tuple(fields),
            handlers=tuple(handlers),
            description=self.text(obj.description),
            hotspots=tuple(hotspots),
            order=tuple(order),
        )

    # ------------------------------------------------------------ scenarios

    def scenario_message(self, obj: Any) -> n.ScenarioMessage:
        return n.ScenarioMessage(
            self.ref(obj.message), self.loc(obj), self.assignments(obj.assignments)
        )

    def scenario(self, obj: Any) -> n.Scenario:
        thens: list[n.ScenarioMessage | n.RowExpectation] = []
        for t in obj.thens:
            if type(t).__name__ == "RowExpectation":
                row = n.RowExpectation(
                    self.ref(t.view), self.expr(t.key), self.loc(t), self.assignments(t.assignments)
                )
                thens.append(row)
            else:
                thens.append(self.scenario_message(t))
        return n.Scenario(
            name=unescape(obj.name),
            loc=self.loc(obj),
            when=(
                n.Passing(self.expr(obj.passing.duration), self.loc(obj.passing))
                if obj.passing is not None
                else self.scenario_message(obj.when)
            ),
            given=tuple(self.scenario_message(g) for g in obj.given),
            then=tuple(thens),
            rejected=bool(obj.rejected),
            message=self.text(obj.message),
        )

    def process(self, obj: Any) -> n.Process:
        loc = self.loc(obj)
        key: n.Field | None = None
        fields: list[n.Field] = []
        handlers: list[n.ProcessOn] = []
        hotspots: list[n.Hotspot] = []
        for m in obj.members:
            kind = type(m).__name__
            if kind == "Key":
                if key is not None:
                    self.error(f"process {obj.name} has a second `key` line", self.loc(m))
                else:
                    key = self.field(m.field)
            elif kind == "StateBlock":
                fields.extend(self.fields(m.fields))
            elif kind in ("ProcessOn", "OnTimer"):
                handlers.append(self.process_on(m))
            else:
                hotspots.append(self.hotspot(m))
        if key is None:
            self.error(f"process {obj.name} has no `key` line (e.g. `key order_id: uuid`)", loc)
            key = n.Field("key", n.TypeRef("uuid", loc), loc)
        return n.Process(
            name=obj.name,
            key=key,
            loc=loc,
            fields=tuple(fields),
            handlers=tuple(handlers),
            description=self.text(obj.description),
            hotspots=tuple(hotspots),
        )

    def process_on(self, obj: Any) -> n.ProcessOn:
        """A process's handler, its lines sorted by kind (their order is the model's)."""
        assignments: list[n.Assignment] = []
        lets: list[n.Let] = []
        thens: list[n.Then] = []
        timers: list[n.SetTimer] = []
        cancels: list[n.CancelTimer] = []
        ends: list[n.EndLine] = []
        for line in obj.lines:
            kind = type(line).__name__
            loc = self.loc(line)
            if kind == "Assignment":
                assignments.append(n.Assignment(line.target, line.op, self.expr(line.value), loc))
            elif kind == "Let":
                lets.append(self.let(line, len(assignments)))
            elif kind == "Then":
                thens.append(self.then(line))
            elif kind == "SetTimer":
                after = None if line.after is None else self.expr(line.after)
                at = None if line.at is None else self.expr(line.at)
                timers.append(n.SetTimer(line.name, loc, after, at))
            elif kind == "CancelTimer":
                cancels.append(n.CancelTimer(line.name, loc))
            else:
                condition = None if line.condition is None else self.expr(line.condition)
                ends.append(n.EndLine(loc, condition))
        on_timer = type(obj).__name__ == "OnTimer"
        return n.ProcessOn(
            loc=self.loc(obj),
            event=None if on_timer else self.ref(obj.event),
            timer=obj.timer if on_timer else None,
            by=None if on_timer or obj.by is None else self.expr(obj.by),
            condition=None if obj.condition is None else self.expr(obj.condition),
            starts=False if on_timer else bool(obj.starts),
            assignments=tuple(assignments),
            lets=tuple(lets),
            thens=tuple(thens),
            timers=tuple(timers),
            cancels=tuple(cancels),
            ends=tuple(ends),
        )

    # ------------------------------------------------------------ contexts and map

    def context(self, obj: Any) -> n.Context:
        actors: list[n.Actor] = []
        values: list[n.Value] = []
        enums: list[n.Enum] = []
        aggregates: list[n.Aggregate] = []
        externals: list[n.External] = []
        policies: list[n.Policy] = []
        views: list[n.View] = []
        processes: list[n.Process] = []
        hotspots: list[n.Hotspot] = []
        scenarios: list[n.Scenario] = []
        for m in obj.members:
            kind = type(m).__name__
            if kind == "Process":
                processes.append(self.process(m))
            elif kind == "Aggregate":
                aggregates.append(self.aggregate(m))
            elif kind == "Policy":
                policies.append(self.policy(m))
            elif kind == "View":
                views.append(self.view(m))
            elif kind == "External":
                externals.append(self.external(m))
            elif kind == "Value":
                values.append(self.value(m))
            elif kind == "Enum":
                enums.append(self.enum(m))
            elif kind == "Actor":
                actors.append(self.actor(m))
            elif kind == "Scenario":
                scenarios.append(self.scenario(m))
            else:
                hotspots.append(self.hotspot(m))
        return n.Context(
            name=obj.name,
            loc=self.loc(obj),
            description=self.text(obj.description),
            actors=tuple(actors),
            values=tuple(values),
            enums=tuple(enums),
            aggregates=tuple(aggregates),
            externals=tuple(externals),
            policies=tuple(policies),
            views=tuple(views),
            hotspots=tuple(hotspots),
            scenarios=tuple(scenarios),
            processes=tuple(processes),
        )

    def patterns(self, obj: Any) -> tuple[n.Ref, ...]:
        if obj is None:
            return ()
        return tuple(n.Ref(p.name, self.loc(p)) for p in obj.items)

    def context_map(self, obj: Any) -> n.ContextMap:
        relations = tuple(
            n.Relation(
                left=self.ref(r.left),
                right=self.ref(r.right),
                kind="<->" if r.kind == "<->" else "->",
                loc=self.loc(r),
                left_patterns=self.patterns(r.left_patterns),
                right_patterns=self.patterns(r.right_patterns),
                symmetric=self.patterns(r.symmetric),
            )
            for r in obj.relations
        )
        return n.ContextMap(relations, self.loc(obj))
