"""Breaking changes between two versions of a model's event schemas (``stormgen diff``).

Stored events are read with the current model, so a schema change must let every old
event still be read (a `was` rename or an upcaster, "vN"). The B-codes
(docs/reference/versioning.md):

- B001 an event removed or renamed (or moved to another aggregate or system);
- B002 a field's type changed (only `T` -> `T?` is compatible), or an aggregate's id type;
- B003 a field added without a default (and not `T?`);
- B004 a field removed without raising the event's version;
- B005 a field renamed (`was`) without raising the event's version;
- B006 an enum member removed that stored events may hold;
- B007 an event's version lowered;
- B008 a process's state field changed type (only `T` -> `T?` is compatible): the
  instances' stored streams hold the old type;
- B009 a process's key renamed or changed type: stored instances are named by it.

A process's state is stored as events too (its instances' streams), read with the
current model; a state field removed or added is no break (a stored value of a field
the state no longer has is ignored; a new field starts at its default, or none).

A finding stands in the new model, or in the old one for a removal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.nodes import (
    PRIMITIVES,
    Aggregate,
    Context,
    Enum,
    Event,
    External,
    Field,
    Model,
    Process,
    TypeRef,
    Value,
)
from stormgen.model.scope import Scope

BREAKING_CODES = {
    "B001": "event removed or renamed",
    "B002": "field type changed",
    "B003": "field added without a default",
    "B004": "field removed without raising the version",
    "B005": "field renamed without raising the version",
    "B006": "enum member removed",
    "B007": "event version lowered",
    "B008": "process state field type changed",
    "B009": "process key renamed or changed type",
}


@dataclass(frozen=True, slots=True)
class _Stored:
    """One event schema with what its types are resolved against."""

    key: str  # Context.Owner.Event
    event: Event
    owner: Aggregate | External
    context: Context


def _events(model: Model) -> dict[str, _Stored]:
    found: dict[str, _Stored] = {}
    for context in model.contexts:
        owners: list[Aggregate | External] = [*context.aggregates, *context.externals]
        for owner in owners:
            for event in owner.events:
                key = f"{context.name}.{owner.name}.{event.name}"
                found.setdefault(key, _Stored(key, event, owner, context))
    return found


def _breaking(code: str, message: str, loc: Location, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Level.ERROR, message, loc, help)


class _Differ:
    def __init__(self, old: Model, new: Model) -> None:
        self.old_scope = Scope(old)
        self.new_scope = Scope(new)
        self.found: dict[tuple[str, Location], Diagnostic] = {}
        self._compared_values: set[tuple[int, int]] = set()

    def add(self, d: Diagnostic) -> None:
        assert d.location is not None
        # A value or enum shared by several events is reported once.
        self.found.setdefault((d.code, d.location), d)

    def _resolve(self, scope: Scope, context: Context | None, t: TypeRef) -> Value | Enum | None:
        r = scope.resolve_type(context, t.name)
        if r is not None and isinstance(r.element, Value | Enum):
            return r.element
        return None

    def compare_types(
        self,
        old: TypeRef,
        old_ctx: Context | None,
        new: TypeRef,
        new_ctx: Context | None,
        where: str,
        loc: Location,
        version_raised: bool,
        code: str = "B002",
    ) -> None:
        """B002 (or `code`) when ``new`` cannot read what ``old`` stored; recurse into
        lists and values."""
        changed = (
            (old.optional and not new.optional)
            or (old.element is None) != (new.element is None)
            or (old.element is None and old.name.rsplit(".", 1)[-1] != new.name.rsplit(".", 1)[-1])
        )
        if changed:
            held = "stored events hold"
            help = "keep the type; add a new field with a default and raise the version"
            if code != "B002":
                held = "its stored instances hold"
                help = "keep the type; add a new state field (with a default) instead"
            self.add(
                _breaking(
                    code,
                    f"{where} changed type from `{old}` to `{new}`: {held} `{old}`",
                    loc,
                    help,
                )
            )
            return
        if old.element is not None and new.element is not None:
            self.compare_types(
                old.element, old_ctx, new.element, new_ctx, where, loc, version_raised, code
            )
            return
        if old.name in PRIMITIVES:
            return
        old_t = self._resolve(self.old_scope, old_ctx, old)
        new_t = self._resolve(self.new_scope, new_ctx, new)
        if old_t is None or new_t is None:
            return  # an unresolved type is validate's finding, not a schema change
        if type(old_t) is not type(new_t):
            self.add(
                _breaking(
                    code,
                    f"{where} changed type from `{old}` to `{new}`: one is a value type, the "
                    "other an enum",
                    loc,
                )
            )
        elif isinstance(old_t, Enum) and isinstance(new_t, Enum):
            kept = {m.name for m in new_t.members}
            for member in old_t.members:
                if member.name not in kept:
                    self.add(
                        _breaking(
                            "B006",
                            f"enum member `{old_t.name}.{member.name}` was removed, but stored "
                            f"events may hold it ({where})",
                            member.loc,
                            "keep the member; stop using it in new events instead",
                        )
                    )
        elif isinstance(old_t, Value) and isinstance(new_t, Value):
            pair = (id(old_t), id(new_t))
            if pair in self._compared_values:
                return
            self._compared_values.add(pair)
            self.compare_fields(
                old_t.fields,
                self.old_scope.context_of(old_t),
                new_t.fields,
                self.new_scope.context_of(new_t),
                f"value `{new_t.name}`",
                version_raised,
            )

    def compare_fields(
        self,
        old_fields: tuple[Field, ...],
        old_ctx: Context | None,
        new_fields: tuple[Field, ...],
        new_ctx: Context | None,
        owner: str,
        version_raised: bool,
    ) -> None:
        """B002-B005 between two field lists (an event's, or a value type's)."""
        old_by_name = {f.name: f for f in old_fields}
        new_names = {f.name for f in new_fields}
        renamed_from: set[str] = set()
        for nf in new_fields:
            of = old_by_name.get(nf.name)
            renamed = nf.was is not None and nf.was in old_by_name and nf.was not in new_names
            if of is None and nf.was is not None and renamed:
                of = old_by_name[nf.was]
                renamed_from.add(nf.was)
                if not version_raised:
                    self.add(
                        _breaking(
                            "B005",
                            f"field `{nf.was}` of {owner} renamed to `{nf.name}` without "
                            "raising the event's version",
                            nf.loc,
                            "raise the version (`vN`) so stored events are upcast",
                        )
                    )
            if of is not None:
                self.compare_types(
                    of.type,
                    old_ctx,
                    nf.type,
                    new_ctx,
                    f"field `{nf.name}` of {owner}",
                    nf.loc,
                    version_raised,
                )
            elif nf.default is None and not nf.type.optional:
                help = "give it a default (`= ...`) or make it optional (`T?`)"
                if nf.was is not None:
                    help = f"`was {nf.was}` names no field of the old {owner}; " + help
                self.add(
                    _breaking(
                        "B003",
                        f"field `{nf.name}` added to {owner} without a default: stored events "
                        "have no value for it",
                        nf.loc,
                        help,
                    )
                )
        for of in old_fields:
            if of.name in new_names or of.name in renamed_from or version_raised:
                continue
            self.add(
                _breaking(
                    "B004",
                    f"field `{of.name}` removed from {owner} without raising the event's version",
                    of.loc,
                    "raise the version (`vN`), or declare the rename with `was "
                    f"{of.name}` on the new field",
                )
            )

    def compare_events(self, old: _Stored, new: _Stored) -> None:
        oe, ne = old.event, new.event
        if ne.version < oe.version:
            self.add(
                _breaking(
                    "B007",
                    f"event `{new.key}` went from version v{oe.version} down to v{ne.version}",
                    ne.loc,
                    f"versions only go up: use v{oe.version + 1} or more",
                )
            )
            return
        self.compare_fields(
            oe.fields,
            old.context,
            ne.fields,
            new.context,
            f"event `{ne.name}`",
            ne.version > oe.version,
        )

    def compare_ids(self, old: Model, new: Model) -> None:
        """B002 for an aggregate whose id (carried by every event) changed type."""
        for old_ctx, old_agg, context, aggregate in _kept(old, new, _aggregates):
            of, nf = old_agg.id_field, aggregate.id_field
            if of.name != nf.name:
                self.add(
                    _breaking(
                        "B002",
                        f"the id of aggregate `{aggregate.name}` was renamed from "
                        f"`{of.name}` to `{nf.name}`: every stored event carries it",
                        nf.loc,
                        f"keep the id `{of.name}`",
                    )
                )
                continue
            self.compare_types(
                of.type,
                old_ctx,
                nf.type,
                context,
                f"the id `{nf.name}` of aggregate `{aggregate.name}`",
                nf.loc,
                False,
            )

    def compare_processes(self, old: Model, new: Model) -> None:
        """B008 for a process state field that changed type, B009 for a process key
        renamed or retyped (the instances' streams and timers are named by its text)."""
        for old_ctx, old_process, context, process in _kept(old, new, _processes):
            ok, nk = old_process.key, process.key
            if ok.name != nk.name or str(ok.type) != str(nk.type):
                self.add(
                    _breaking(
                        "B009",
                        f"the key of process `{process.name}` changed from `{ok.name}: "
                        f"{ok.type}` to `{nk.name}: {nk.type}`: its stored instances hold "
                        "the old key (in their state, stream names and timers)",
                        nk.loc,
                        f"keep the key `{ok.name}: {ok.type}`; start a new process for the new key",
                    )
                )
            old_fields = {f.name: f for f in old_process.fields}
            for nf in process.fields:
                of = old_fields.get(nf.name)
                if of is None and nf.was is not None:
                    of = old_fields.get(nf.was)
                if of is None:
                    continue
                where = f"state field `{nf.name}` of process `{process.name}`"
                self.compare_types(of.type, old_ctx, nf.type, context, where, nf.loc, False, "B008")


M = TypeVar("M", Aggregate, Process)


def _aggregates(context: Context) -> tuple[Aggregate, ...]:
    return context.aggregates


def _processes(context: Context) -> tuple[Process, ...]:
    return context.processes


def _kept(
    old: Model, new: Model, members: Callable[[Context], tuple[M, ...]]
) -> Iterator[tuple[Context, M, Context, M]]:
    """The members (of one kind) both models have, by context and name: old, then new."""
    olds = {(c.name, m.name): (c, m) for c in old.contexts for m in members(c)}
    for context in new.contexts:
        for member in members(context):
            found = olds.get((context.name, member.name))
            if found is not None:
                yield found[0], found[1], context, member


def diff_models(old: Model, new: Model) -> list[Diagnostic]:
    """The breaking changes (B001-B009) from ``old``'s event schemas (and processes'
    states) to ``new``'s."""
    differ = _Differ(old, new)
    old_events, new_events = _events(old), _events(new)
    for key, stored in old_events.items():
        current = new_events.get(key)
        if current is None:
            differ.add(
                _breaking(
                    "B001",
                    f"event `{key}` was removed or renamed: stored events of this type could "
                    "no longer be read",
                    stored.event.loc,
                    "keep the event (raise its version to change it); a fact once recorded "
                    "stays part of the history",
                )
            )
            continue
        differ.compare_events(stored, current)
    differ.compare_ids(old, new)
    differ.compare_processes(old, new)
    new_files = {f.path for f in new.files}

    def order(d: Diagnostic) -> tuple[int, str, int, int, str]:
        loc = d.location
        assert loc is not None
        # Findings in the new model first, then the removals found in the old one.
        return (0 if loc.file in new_files else 1, loc.file, loc.line, loc.column, d.code)

    return sorted(differ.found.values(), key=order)


def iter_codes() -> Iterator[tuple[str, str]]:
    """The B-codes with their one-line meaning."""
    yield from BREAKING_CODES.items()
