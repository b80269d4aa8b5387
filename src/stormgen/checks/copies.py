"""E402 for the values the language copies by name, which no expression spells out.

An `emit` fills event fields from command and state fields of the same name, a policy's
`then` fills command fields from the event's, a view copies event fields into columns,
and `apply` sets state fields from event fields (docs/language.md, "Checks: decisions"). Each copy
must fit its target as an assignment would; the written expressions themselves are
checked by :mod:`stormgen.checks.expressions`.
"""

from __future__ import annotations

from collections.abc import Iterator

from stormgen.checks._context import CheckContext, error
from stormgen.checks._registry import rule
from stormgen.diagnostics import Diagnostic, Location
from stormgen.model.nodes import Aggregate, Command, Context, Event, Field
from stormgen.model.types import Type, assignable, field_type


def _mismatch(
    statement: str,
    what: str,
    source: Field,
    source_type: Type,
    target: Field,
    target_type: Type,
    loc: Location,
) -> Diagnostic:
    return error(
        "E402",
        f"{statement} copies {what} `{source.name}: {source_type}` into "
        f"`{target.name}: {target_type}`, which does not fit",
        loc,
        f"assign `{target.name}` explicitly, or make the two types agree",
    )


def _fields(fields: tuple[Field, ...]) -> dict[str, Field]:
    found: dict[str, Field] = {}
    for f in fields:
        found.setdefault(f.name, f)
    return found


@rule("E402")
def implicit_copies(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E402: a value copied by name into a field of a type it does not fit."""
    scope = ctx.scope

    def typed(f: Field, context: Context | None) -> Type:
        return field_type(f, context, scope)

    for context, aggregate in ctx.aggregates():
        state = _fields(aggregate.state)
        for command in aggregate.commands:
            sources = _fields((aggregate.id_field, *command.fields))
            for emit in command.emits:
                emitted = ctx.emit_target.get(id(emit))
                if emitted is None:
                    continue
                assigned = {a.target for a in emit.assignments}
                for f in emitted.fields:
                    if f.name in assigned:
                        continue
                    what, source = "command field", sources.get(f.name)
                    if source is None:
                        what, source = "state field", state.get(f.name)
                    if source is None:
                        continue
                    s, t = typed(source, context), typed(f, context)
                    if not assignable(s, t):
                        yield _mismatch(f"`emit {emitted.name}`", what, source, s, f, t, emit.loc)
        for event in aggregate.events:
            assigned = {a.target for a in event.apply}
            for f in event.fields:
                target = state.get(f.name)
                if target is None or f.name in assigned:
                    continue
                s, t = typed(f, context), typed(target, context)
                if not assignable(s, t):
                    yield _mismatch(
                        f"the `apply` of `{event.name}`", "event field", f, s, target, t, event.loc
                    )

    for context, policy in ctx.policies():
        trigger = ctx.when_target.get(id(policy))
        if trigger is None:
            continue
        trigger_event = trigger.element
        assert isinstance(trigger_event, Event)
        implicit = (trigger.owner.id_field,) if isinstance(trigger.owner, Aggregate) else ()
        from_event = _fields((*trigger_event.fields, *implicit))
        for then in policy.thens:
            target_r = ctx.then_target.get(id(then))
            if target_r is None:
                continue
            issued = target_r.element
            assert isinstance(issued, Command)
            owner = target_r.owner
            targets = [*issued.fields]
            if isinstance(owner, Aggregate):
                targets.append(owner.id_field)
            assigned = {a.target for a in then.assignments}
            for f in _fields(tuple(targets)).values():
                source = from_event.get(f.name)
                if source is None or f.name in assigned:
                    continue
                s, t = typed(source, trigger.context), typed(f, context)
                if not assignable(s, t):
                    yield _mismatch(
                        f"`then {then.command.name}`", "event field", source, s, f, t, then.loc
                    )

    for context, view in ctx.views():
        columns = _fields(view.fields)
        for on in view.handlers:
            source_r = ctx.on_target.get(id(on))
            if source_r is None or on.delete:
                continue
            consumed = source_r.element
            assert isinstance(consumed, Event)
            assigned = {a.target for a in on.assignments}
            for f in consumed.fields:
                column = columns.get(f.name)
                if column is None or f.name in assigned:
                    continue
                s, t = typed(f, source_r.context), typed(column, context)
                if not assignable(s, t):
                    yield _mismatch(f"`on {on.event.name}`", "event field", f, s, column, t, on.loc)
