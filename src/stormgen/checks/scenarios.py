"""Scenarios checked like any other element (docs/language.md, "Scenarios").

- E102: a name that is no event, command or view (as anywhere else);
- E401, E402, E403: a value that does not type-check, a field the message does not have;
- E405: a ``then`` that can never hold: an event the command never emits (or emits in
  another order, or leaves out one it always emits), an event after ``when EVENT``,
  a command no policy or process issues for the scenario's events (after ``DURATION
  pass``: no timer handler of a process the ``given`` events start), ``rejected`` for
  a command without that ``require`` or for an event or time passing, a view row none
  of the events can touch, an empty ``then`` (nothing happens) for a command that
  always records an event;
- E406: a scenario that cannot run as written: a name used by two scenarios, a
  ``given`` that is a command, a ``when`` that is an external system's command, a
  ``given`` event or ``when`` message that leaves out a field with no default.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from stormgen.checks._context import KIND_WORDS, CheckContext, error
from stormgen.checks._registry import rule
from stormgen.diagnostics import Diagnostic, Location
from stormgen.model.hints import did_you_mean
from stormgen.model.nodes import (
    Assignment,
    Binary,
    Call,
    Command,
    Context,
    Event,
    Expr,
    Passing,
    Policy,
    ProcessOn,
    RowExpectation,
    Scenario,
    ScenarioMessage,
)
from stormgen.model.scenarios import (
    MESSAGE_KINDS,
    VIEW_KINDS,
    Message,
    all_scenarios,
    emitted_events,
    fields_of,
    is_external,
    issued_commands,
    reacting_policies,
    reacting_processes,
    resolve_message,
    resolve_view,
    timer_commands,
    views_reading,
)
from stormgen.model.scope import ALL_KINDS, Scope
from stormgen.model.typecheck import infer, subexpressions
from stormgen.model.types import DURATION, Env, Type, assignable, scenario_env, view_row

_CODES = ("E102", "E401", "E402", "E403", "E405", "E406")


@rule(*_CODES)
def scenarios(ctx: CheckContext) -> list[Diagnostic]:
    """E405, E406 (and E102, E401-E403 in scenarios): a scenario that cannot hold or run."""
    out: list[Diagnostic] = []
    seen: dict[str, Scenario] = {}
    for context, scenario in all_scenarios(ctx.model):
        first = seen.setdefault(scenario.name, scenario)
        if first is not scenario:
            where = f"line {first.loc.line}"
            if first.loc.file != scenario.loc.file:
                where = f"{Path(first.loc.file).name}:{first.loc.line}"
            out.append(
                error(
                    "E406",
                    f'a second scenario named "{scenario.name}" (the first is at {where})',
                    scenario.loc,
                    "give every scenario a name of its own: it names its test",
                )
            )
        out += ScenarioChecker(ctx.scope, context, scenario).check()
    return out


class ScenarioChecker:
    """The findings of one scenario."""

    def __init__(self, scope: Scope, context: Context | None, scenario: Scenario) -> None:
        self.scope = scope
        self.context = context
        self.scenario = scenario
        self.env: Env = scenario_env(context, scope)
        self.out: list[Diagnostic] = []

    def check(self) -> list[Diagnostic]:
        s = self.scenario
        given = [self.message(g, "given") for g in s.given]
        if isinstance(s.when, Passing):
            self.passing(s.when, [m for m in given if m is not None])
            when = None
        else:
            when = self.message(s.when, "when")
        thens: list[Message | None] = []
        for item in s.then:
            if isinstance(item, RowExpectation):
                self.row(item, given, when)
            else:
                thens.append(self.message(item, "then"))
        if when is not None and (when.is_event or not is_external(when)):
            self.outcome(when, [m for m in thens if m is not None])
        return self.out

    # ------------------------------------------------------------ names and fields

    def message(self, node: ScenarioMessage, part: str) -> Message | None:
        found = resolve_message(self.scope, self.context, node)
        if found is None:
            self.unknown(node, part)
            return None
        if part == "given" and not found.is_event:
            self.out.append(
                error(
                    "E406",
                    f"`{node.message.name}` is a command: `given` lists events that happened",
                    node.message.loc,
                    "name the events the command recorded, or make it the `when`",
                )
            )
        if part == "when" and not found.is_event and is_external(found):
            self.out.append(
                error(
                    "E406",
                    f"`{node.message.name}` is a command of an external system: "
                    "the service sends it, it does not handle it",
                    node.message.loc,
                    "make the `when` the command that leads to it, or the system's answer",
                )
            )
        fields = fields_of(found, self.scope)
        self.assignments(node.assignments, fields, f"{self.kind(found)} {found.element.name}")
        if part in ("given", "when"):
            self.complete(node, found, fields)
        return found

    def kind(self, message: Message) -> str:
        return "event" if message.is_event else "command"

    def unknown(self, node: ScenarioMessage, part: str) -> None:
        ref = node.message
        other = self.scope.resolve(self.context, ref.name, ALL_KINDS)
        what = "an event" if part == "given" else "an event or a command"
        if other is not None:
            message = f"`{ref.name}` is {KIND_WORDS[other.kind]}, not {what}"
        else:
            noun = "event" if part == "given" else "event or command"
            message = f"unknown {noun} `{ref.name}`"
        help_ = did_you_mean(ref.name, self.scope.candidates(self.context, MESSAGE_KINDS))
        if help_ is None and self.context is None and "." not in ref.name:
            owners = [
                c.name
                for c in self.scope.model.contexts
                if self.scope.resolve(c, ref.name, MESSAGE_KINDS) is not None
            ]
            if owners:
                help_ = f"a scenario at top level names its context: '{owners[0]}.{ref.name}'"
        self.out.append(error("E102", message, ref.loc, help_))

    def assignments(self, items: Iterable[Assignment], fields: dict[str, Type], what: str) -> None:
        for a in items:
            if a.target not in fields:
                self.out.append(
                    error(
                        "E403",
                        f"`{a.target}` is not a field of {what}",
                        a.loc,
                        did_you_mean(a.target, fields),
                    )
                )
                self.out += infer(a.value, self.env)[1]
                continue
            if a.op != "=":
                self.out.append(
                    error(
                        "E402",
                        f"type mismatch: `{a.op}` has no earlier value to change in a scenario",
                        a.loc,
                        f"write '{a.target} = ...'",
                    )
                )
                continue
            fresh = [
                e for e in subexpressions(a.value) if isinstance(e, Call) and e.function == "new_id"
            ]
            if fresh:
                self.out.append(
                    error(
                        "E406",
                        "new_id() gives another id on every run: a scenario's values are fixed",
                        fresh[0].loc,
                        "write 'id(\"a name\")' for an id that stays the same",
                    )
                )
                continue
            target = fields[a.target]
            got, problems = infer(a.value, self.env, target)
            self.out += problems
            if not problems and not assignable(got, target):
                self.out.append(
                    error(
                        "E402",
                        f"type mismatch: cannot assign {got} to `{a.target}` ({target})",
                        a.value.loc,
                    )
                )

    def complete(self, node: ScenarioMessage, found: Message, fields: dict[str, Type]) -> None:
        """E406 for a field a message to run needs and the scenario leaves out."""
        named = {a.target for a in node.assignments}
        declared = {f.name: f for f in found.element.fields}
        for name in fields:
            f = declared.get(name)
            needed = f is None or (f.default is None and not f.type.optional)
            if name not in named and needed:
                self.out.append(
                    error(
                        "E406",
                        f"{self.kind(found)} {found.element.name} needs `{name}`, "
                        "which has no default",
                        node.loc,
                        f"write '{name} = ...' in its braces",
                    )
                )

    def row(self, item: RowExpectation, given: list[Message | None], when: Message | None) -> None:
        view = resolve_view(self.scope, self.context, item)
        if view is None:
            other = self.scope.resolve(self.context, item.view.name, ALL_KINDS)
            message = (
                f"`{item.view.name}` is {KIND_WORDS[other.kind]}, not a view"
                if other is not None
                else f"unknown view `{item.view.name}`"
            )
            help_ = did_you_mean(item.view.name, self.scope.candidates(self.context, VIEW_KINDS))
            self.out.append(error("E102", message, item.view.loc, help_))
            return
        row = view_row(view, self.scope)
        key_type = row[view.key.name]
        got, problems = infer(item.key, self.env, key_type)
        self.out += problems
        if not problems and not assignable(got, key_type):
            self.out.append(
                error(
                    "E402",
                    f"type mismatch: the key `{view.key.name}` of {view.name} is {key_type}, "
                    f"not {got}",
                    item.key.loc,
                )
            )
        self.assignments(item.assignments, row, f"view {view.name}")
        events = [m.element for m in given if m is not None and m.is_event]
        if when is not None:
            if when.is_event:
                events.append(when.element)
            elif isinstance(when.element, Command):
                events += [e for e, _ in emitted_events(when.element, self.scope)]
        if not any(view in views_reading(e, self.scope) for e in events if isinstance(e, Event)):
            self.out.append(
                error(
                    "E405",
                    f"view {view.name} reads none of this scenario's events: "
                    "it can have no row to compare",
                    item.loc,
                )
            )

    # ------------------------------------------------------------ can `then` hold?

    def passing(self, when: Passing, given: list[Message]) -> None:
        """``DURATION pass``: a duration; and after it only the commands the timers of
        the processes the ``given`` events start may issue (and view rows)."""
        got, problems = infer(when.duration, self.env, DURATION)
        self.out += problems
        if not problems and got != DURATION:
            self.out.append(
                error(
                    "E402",
                    f"type mismatch: time passes by a duration, not {got}",
                    when.duration.loc,
                    "write e.g. 'minutes(16) pass'",
                )
            )
        s = self.scenario
        if s.rejected:
            self.cannot(when.loc, "time passing is no command: nothing is rejected", None)
        issued = {
            id(c)
            for m in given
            if isinstance(m.element, Event)
            for context, process, handler in reacting_processes(m.element, self.scope)
            if handler.starts
            for c in timer_commands(process, context, self.scope)
        }
        for item in s.then:
            if not isinstance(item, ScenarioMessage):
                continue
            found = resolve_message(self.scope, self.context, item)
            if found is None:
                continue
            if found.is_event:
                self.cannot(
                    item.loc,
                    f"event {found.element.name} cannot follow time passing: "
                    "only a command records events",
                    "the commands the processes' timers issue are expected here",
                )
            elif id(found.element) not in issued:
                self.cannot(
                    item.loc,
                    f"no timer of a process the `given` events start issues {found.element.name}",
                    "after time passes, a `then` names the commands the due timers' handlers issue",
                )

    def outcome(self, when: Message, thens: list[Message]) -> None:
        s = self.scenario
        if s.rejected:
            self.rejected(when)
            return
        expected_events = [m for m in thens if m.is_event]
        if when.is_event:
            for m in expected_events:
                self.cannot(
                    m.node.loc,
                    f"event {m.element.name} cannot follow `when` an event: "
                    "only a command records events",
                    "the commands the policies and processes issue are expected here, "
                    "not their events",
                )
            sources = [when.element]
            emits: list[tuple[Event, bool]] = []
        else:
            assert isinstance(when.element, Command)
            emits = emitted_events(when.element, self.scope)
            self.events_in_order(when.element, emits, expected_events)
            sources = [e for e, _ in emits]
        issued = {
            id(c)
            for e in sources
            if isinstance(e, Event)
            for context, reaction in _reactions(e, self.scope)
            for c in issued_commands(reaction, context, self.scope)
        }
        for m in thens:
            if not m.is_event and id(m.element) not in issued:
                self.cannot(
                    m.node.loc,
                    f"no policy or process issues {m.element.name} for the events of this `when`",
                    "a scenario's `then` names the commands its policies and processes issue",
                )
        if not s.then and not when.is_event:
            assert isinstance(when.element, Command)
            always = [e for e, a in emits if a]
            if always:
                self.cannot(
                    s.loc,
                    f"an empty `then` says nothing happens, but command {when.element.name} "
                    f"always records {always[0].name}",
                    "name the events it records, or `rejected` if a guard stops it",
                )

    def rejected(self, when: Message) -> None:
        s = self.scenario
        if when.is_event:
            self.cannot(s.when.loc, "an event cannot be rejected: it happened", None)
            return
        command = when.element
        assert isinstance(command, Command)
        messages = [r.message for r in command.requires]
        # A division may fail: the service then refuses "<Command> cannot be computed: ...".
        computed = f"{command.name} cannot be computed: "
        divides = any(
            isinstance(e, Binary) and e.op == "/"
            for expr in _expressions(command)
            for e in subexpressions(expr)
        )
        if not messages and not divides:
            self.cannot(
                s.when.loc, f"command {command.name} has no `require`: it is never rejected", None
            )
        elif s.message is not None and s.message not in messages:
            if divides and s.message.startswith(computed):
                return
            quoted = ", ".join(f'"{m}"' for m in messages)
            self.cannot(
                s.when.loc,
                f'command {command.name} never rejects with "{s.message}"',
                f"its guards say: {quoted}" if messages else None,
            )

    def events_in_order(
        self, command: Command, emits: list[tuple[Event, bool]], expected: list[Message]
    ) -> None:
        if not expected:
            return  # events are not compared
        i = 0
        for m in expected:
            j = i
            while j < len(emits) and emits[j][0] is not m.element:
                j += 1
            if j == len(emits):
                never = all(e is not m.element for e, _ in emits)
                why = "never emits" if never else "does not emit, in this order,"
                self.cannot(
                    m.node.loc,
                    f"command {command.name} {why} event {m.element.name}",
                    "its events: " + (", ".join(e.name for e, _ in emits) or "none"),
                )
                return
            for skipped, always in emits[i:j]:
                if always:
                    self.cannot(
                        m.node.loc,
                        f"command {command.name} always emits {skipped.name} before "
                        f"{m.element.name}",
                        "list every event the command records, in order",
                    )
                    return
            i = j + 1
        for missing, always in emits[i:]:
            if always:
                self.cannot(
                    expected[-1].node.loc,
                    f"command {command.name} always emits {missing.name} too",
                    "list every event the command records, in order",
                )
                return

    def cannot(self, loc: Location, message: str, help_: str | None) -> None:
        self.out.append(error("E405", f"this `then` can never hold: {message}", loc, help_))


def _reactions(event: Event, scope: Scope) -> list[tuple[Context, Policy | ProcessOn]]:
    """The policies and process handlers that react to ``event``."""
    out: list[tuple[Context, Policy | ProcessOn]] = list(reacting_policies(event, scope))
    return out + [(c, h) for c, _, h in reacting_processes(event, scope)]


def _expressions(command: Command) -> list[Expr]:
    """Every expression a command evaluates: its lets, guards and emits."""
    out: list[Expr] = [let.value for let in command.lets]
    out += [r.condition for r in command.requires]
    for emit in command.emits:
        out += [a.value for a in emit.assignments]
        if emit.condition is not None:
            out.append(emit.condition)
    return out
