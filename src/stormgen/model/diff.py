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
- B007 an event's version lowered.

A finding stands in the new model, or in the old one for a removal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
    ) -> None:
        """B002 when ``new`` cannot read what ``old`` stored; recurse into lists and values."""
        changed = (
            (old.optional and not new.optional)
            or (old.element is None) != (new.element is None)
            or (old.element is None and old.name.rsplit(".", 1)[-1] != new.name.rsplit(".", 1)[-1])
        )
        if changed:
            self.add(
                _breaking(
                    "B002",
                    f"{where} changed type from `{old}` to `{new}`: stored events hold `{old}`",
                    loc,
                    "keep the type; add a new field with a default and raise the version",
                )
            )
            return
        if old.element is not None and new.element is not None:
            self.compare_types(
                old.element, old_ctx, new.element, new_ctx, where, loc, version_raised
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
                    "B002",
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
        old_aggs = {(c.name, a.name): (c, a) for c in old.contexts for a in c.aggregates}
        for context in new.contexts:
            for aggregate in context.aggregates:
                found = old_aggs.get((context.name, aggregate.name))
                if found is None:
                    continue
                old_ctx, old_agg = found
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


def diff_models(old: Model, new: Model) -> list[Diagnostic]:
    """The breaking changes (B001-B007) from ``old``'s event schemas to ``new``'s."""
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
