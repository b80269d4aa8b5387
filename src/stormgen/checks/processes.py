"""Processes' own rules (docs/language.md, "Processes"): E207 a process that nothing
starts, E208 a timer set with no handler, E209 a handler (or a `cancel`) of a timer never
set, W508 a state field nothing ever sets (of an aggregate or a process)."""

from __future__ import annotations

from collections.abc import Iterator

from stormgen.checks._context import CheckContext, error, is_optional_or_defaulted, warning
from stormgen.checks._registry import rule
from stormgen.diagnostics import Diagnostic
from stormgen.model.hints import did_you_mean
from stormgen.model.nodes import Event


@rule("E207")
def processes_never_started(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E207: a process with no `starts` handler (no instance could ever exist)."""
    for _, process in ctx.processes():
        if not any(h.starts for h in process.handlers):
            first = next((h for h in process.handlers if h.event is not None), None)
            example = first.event.name if first is not None and first.event else "EVENT"
            yield error(
                "E207",
                f"process `{process.name}` has no `starts` handler: no instance can begin",
                process.loc,
                f"mark the handler of the first event `starts`: `on {example} starts {{ ... }}`",
            )


@rule("E208", "E209")
def timers_and_handlers(ctx: CheckContext) -> Iterator[Diagnostic]:
    """E208: a timer set but with no `on timer` handler; E209: an `on timer` handler (or
    a `cancel`) of a timer never set."""
    for _, process in ctx.processes():
        handled = {h.timer for h in process.handlers if h.timer is not None}
        set_ = set(process.timer_names)
        reported: set[str] = set()
        for handler in process.handlers:
            for timer in handler.timers:
                if timer.name not in handled and timer.name not in reported:
                    reported.add(timer.name)
                    yield error(
                        "E208",
                        f"timer `{timer.name}` of process `{process.name}` is set but "
                        "nothing handles it",
                        timer.loc,
                        f"add `on timer {timer.name} {{ ... }}`, or drop the `timer` line",
                    )
        for handler in process.handlers:
            if handler.timer is not None and handler.timer not in set_:
                yield error(
                    "E209",
                    f"process `{process.name}` handles timer `{handler.timer}`, which no "
                    "handler sets",
                    handler.loc,
                    did_you_mean(handler.timer, sorted(set_))
                    or f"set it in a handler: `timer {handler.timer} after minutes(15)`",
                )
            for cancel in handler.cancels:
                if cancel.name not in set_:
                    yield error(
                        "E209",
                        f"process `{process.name}` cancels timer `{cancel.name}`, which no "
                        "handler sets",
                        cancel.loc,
                        did_you_mean(cancel.name, sorted(set_)),
                    )


@rule("W508")
def state_fields_never_set(ctx: CheckContext) -> Iterator[Diagnostic]:
    """W508: a state field of an aggregate or a process without a default that no event
    or handler ever sets (a `was` rename often leaves one behind)."""
    for _, aggregate in ctx.aggregates():
        set_ = {f.name for e in aggregate.events for f in e.fields}
        set_ |= {a.target for e in aggregate.events for a in e.apply}
        set_.add(aggregate.id_field.name)
        for f in aggregate.state:
            if f.name not in set_ and not is_optional_or_defaulted(f):
                yield warning(
                    "W508",
                    f"state field `{f.name}` of aggregate `{aggregate.name}` has no default "
                    "and no event sets it",
                    f.loc,
                    f"give it a default, or set it in an event (a field `{f.name}`, or "
                    f"`apply {{ {f.name} = ... }}`)",
                )
    for _, process in ctx.processes():
        set_ = {a.target for h in process.handlers for a in h.assignments}
        for handler in process.handlers:
            source = ctx.on_target.get(id(handler))
            if handler.starts and source is not None and isinstance(source.element, Event):
                set_ |= {f.name for f in source.element.fields}  # copied when it starts
        for f in process.fields:
            if f.name not in set_ and not is_optional_or_defaulted(f):
                yield warning(
                    "W508",
                    f"state field `{f.name}` of process `{process.name}` has no default "
                    "and no handler sets it",
                    f.loc,
                    f"give it a default, or assign it in a handler (`{f.name} = ...`)",
                )
