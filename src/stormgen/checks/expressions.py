"""E401, E402, E403 (and E107, a lookup of another context's view): every expression and
default of a model, type-checked (docs/language.md).

Each expression is checked in the environment of the place it stands in: a
``require`` sees the command and the state, an ``apply`` the event and the state, a
policy the triggering event, a view the event and the row. An element that cannot be
resolved (an unknown event or command) is skipped: E102 is reported for it elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from stormgen.checks._context import CheckContext
from stormgen.checks._registry import rule
from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.model.hints import did_you_mean
from stormgen.model.nodes import (
    Aggregate,
    Assignment,
    Command,
    Context,
    Enum,
    Event,
    Expr,
    External,
    Field,
    ListExpr,
    Literal,
    Model,
    Name,
    Policy,
    Process,
    ProcessOn,
    Require,
    Then,
    Unary,
    View,
)
from stormgen.model.scope import COMMAND_KINDS, EVENT_KINDS, Scope
from stormgen.model.typecheck import (
    command_lines,
    fan_out,
    infer,
    let_types,
    literal_text,
    mismatch,
    narrowed_by,
)
from stormgen.model.types import (
    BOOL,
    DATETIME,
    DURATION,
    NONE,
    STR,
    UNKNOWN,
    EnumType,
    Env,
    ListType,
    OptionalType,
    Type,
    ValueType,
    apply_env,
    assignable,
    command_env,
    constant_env,
    enum_type,
    field_type,
    is_numeric,
    message_fields,
    policy_env,
    process_env,
    process_state,
    strip_optional,
    view_env,
    view_row,
)


@rule("E401", "E402", "E403", "E404", "E107")
def expressions(ctx: CheckContext) -> list[Diagnostic]:
    """E401, E402, E403: an expression or a default that does not type-check (E107: a
    lookup `View[key]` of another context's view)."""
    return check_expressions(ctx.model, ctx.scope)


def check_expressions(model: Model, scope: Scope) -> list[Diagnostic]:
    """Type-check every expression and default in ``model``: E401, E402 and E403."""
    out: list[Diagnostic] = []
    for value in model.values:
        out += _defaults(value.fields, None, scope)
    for context in model.contexts:
        out += _check_context(context, scope)
    return out


def _check_context(context: Context, scope: Scope) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for value in context.values:
        out += _defaults(value.fields, context, scope)
    for aggregate in context.aggregates:
        out += _check_aggregate(aggregate, context, scope)
    for external in context.externals:
        for command in external.commands:
            out += _defaults(command.fields, context, scope)
        for event in external.events:
            out += _defaults(event.fields, context, scope)
            out += _check_apply(event, external, context, scope)
    for policy in context.policies:
        out += _check_policy(policy, context, scope)
    for view in context.views:
        out += _check_view(view, context, scope)
    for process in context.processes:
        out += _check_process(process, context, scope)
    return out


# ---------------------------------------------------------------- defaults


def _defaults(fields: Iterable[Field], context: Context | None, scope: Scope) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for f in fields:
        if f.default is not None:
            out += check_default(f, context, scope)
    return out


def check_default(f: Field, context: Context | None, scope: Scope) -> list[Diagnostic]:
    """E402 when a field's default does not fit its type (E401 for an unknown name in it)."""
    assert f.default is not None
    target = field_type(f, context, scope)
    if target is UNKNOWN:
        return []  # the type itself is unknown: E102
    default = f.default
    wanted = strip_optional(target)
    if isinstance(default, Name) and isinstance(wanted, EnumType):
        found = _default_member(default, wanted, context, scope)
        if found is not None:
            return [found] if isinstance(found, Diagnostic) else []
    source, problems = infer(default, constant_env(context, scope), target)
    if problems:
        return problems
    if not assignable(source, target):
        written = _written(default)
        what = f"{written} ({source})" if written not in (None, str(source)) else str(source)
        help_ = None
        if source == NONE:
            help_ = f"make the field optional: '{f.name}: {f.type}?'"
        elif isinstance(source, ListType) and not isinstance(wanted, ListType):
            help_ = "only a list field may default to a list"
        return [
            mismatch(f"the default of `{f.name}` must be {target}, not {what}", default.loc, help_)
        ]
    return []


def _written(default: Expr) -> str | None:
    """A default as written, for messages: ``4.5``, ``"x"``, ``none``, ``[]``, ``-3``."""
    if isinstance(default, Literal):
        return literal_text(default)
    if isinstance(default, ListExpr) and not default.items:
        return "[]"
    if isinstance(default, Unary) and isinstance(default.operand, Literal):
        return f"-{literal_text(default.operand)}"
    if isinstance(default, Name):
        return default.dotted
    return None


def _default_member(
    default: Name, wanted: EnumType, context: Context | None, scope: Scope
) -> Diagnostic | bool | None:
    """Check an enum member default (``Medium``, ``Size.Medium``): a finding, True if fine.

    None when the name is not written as a member of the wanted enum at all (it then
    gets the ordinary check).
    """
    parts = default.parts
    if len(parts) == 1:
        member = parts[0]
    else:
        found = scope.resolve_type(context, ".".join(parts[:-1]))
        if found is None or not isinstance(found.element, Enum):
            return None
        written = enum_type(found.element, found.context)
        if written != wanted:
            return mismatch(
                f"the default must be a member of {wanted.name}, not of {written.name}",
                default.loc,
            )
        member = parts[-1]
    if member in wanted.members:
        return True
    return mismatch(
        f"`{member}` is not a member of {wanted.name}",
        default.loc,
        did_you_mean(member, wanted.members) or "members: " + ", ".join(wanted.members),
    )


# ---------------------------------------------------------------- aggregates


def _check_aggregate(aggregate: Aggregate, context: Context, scope: Scope) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    out += _defaults([aggregate.id_field], context, scope)
    out += _defaults(aggregate.state, context, scope)
    for command in aggregate.commands:
        out += _defaults(command.fields, context, scope)
        out += _check_command(command, context, scope)
    for event in aggregate.events:
        out += _defaults(event.fields, context, scope)
        out += _check_apply(event, aggregate, context, scope)
    return out


def _check_command(command: Command, context: Context, scope: Scope) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for line, seen, problems in command_lines(command, command_env(command, scope, lines=False)):
        out += problems
        if isinstance(line, Require):
            out += _condition(line.condition, seen, "a require condition")
    env = seen  # the emits see every `let`, and what every `require` proved
    for emit in command.emits:
        if emit.condition is not None:
            out += _condition(emit.condition, env, "an emit's `if`")
        found = scope.resolve(context, emit.event.name, EVENT_KINDS)
        if found is None or not isinstance(found.element, Event):
            continue  # E102
        event = found.element
        targets = {f.name: field_type(f, found.context, scope) for f in event.fields}
        owner = found.owner
        for a in emit.assignments:
            if a.target not in targets:
                if isinstance(owner, Aggregate) and a.target == owner.id_field.name:
                    why = (
                        f"`{a.target}` is the id of {owner.name}: an event always carries "
                        "the id of the aggregate that emits it"
                    )
                    out.append(_not_a_field(why, a.loc, None))
                else:
                    out.append(
                        _not_a_field(
                            f"`{a.target}` is not a field of event {event.name}",
                            a.loc,
                            did_you_mean(a.target, targets),
                        )
                    )
                out += infer(a.value, env)[1]
                continue
            out += _assign(a, targets[a.target], env, plain_only="an event field")
    return out


def _check_apply(
    event: Event, owner: Aggregate | External, context: Context, scope: Scope
) -> list[Diagnostic]:
    if not event.apply:
        return []
    out: list[Diagnostic] = []
    env = apply_env(event, scope)
    state = env.state.fields if env.state is not None else {}
    for a in event.apply:
        if a.target not in state:
            if isinstance(owner, External):
                why = (
                    f"`{a.target}` is not a field of any state: "
                    f"external system {owner.name} has no state"
                )
            else:
                why = f"`{a.target}` is not a field of the state of {owner.name}"
            out.append(_not_a_field(why, a.loc, did_you_mean(a.target, state)))
            out += infer(a.value, env)[1]
            continue
        out += _assign(a, state[a.target], env)
    return out


# ---------------------------------------------------------------- policies


def _check_policy(policy: Policy, context: Context, scope: Scope) -> list[Diagnostic]:
    found = scope.resolve(context, policy.when.name, EVENT_KINDS)
    if found is None or not isinstance(found.element, Event):
        return []  # E102
    out: list[Diagnostic] = []
    env = policy_env(found.element, context, scope)
    if policy.condition is not None:
        out += _condition(policy.condition, env, "a policy's `if`")
    env = narrowed_by(policy.condition, env)  # what the `then` lines see
    when_env = env
    for then in policy.thens:
        out += _then_line(then, when_env, context, scope)
    return out


def _then_line(then: Then, env: Env, context: Context | None, scope: Scope) -> list[Diagnostic]:
    """A `then` line of a policy or a process: its `if`, fan-out and assignments."""
    out: list[Diagnostic] = []
    if then.condition is not None:
        out += _condition(then.condition, env, "a `then` line's `if`")
    if then.fan is not None:
        env, problems = fan_out(then.fan, env)
        out += problems
    issued = scope.resolve(context, then.command.name, COMMAND_KINDS)
    if issued is None or not isinstance(issued.element, Command):
        return out  # E102
    command = issued.element
    targets = message_fields(command.fields, issued.owner, issued.context, scope)
    for a in then.assignments:
        if a.target not in targets:
            out.append(
                _not_a_field(
                    f"`{a.target}` is not a field of command {command.name}",
                    a.loc,
                    did_you_mean(a.target, targets),
                )
            )
            out += infer(a.value, env)[1]
            continue
        out += _assign(a, targets[a.target], env, plain_only="a command field")
    return out


# ---------------------------------------------------------------- views


def _check_view(view: View, context: Context, scope: Scope) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    out += _defaults([view.key], context, scope)
    out += _defaults(view.fields, context, scope)
    row = view_row(view, scope)
    key_type = row[view.key.name]
    out += _check_order(view, row)
    for on in view.handlers:
        found = scope.resolve(context, on.event.name, EVENT_KINDS)
        if found is None or not isinstance(found.element, Event):
            continue  # E102
        event = found.element
        if on.by is not None:
            got, problems = infer(on.by, view_env(view, event, scope, row=False), key_type)
            out += problems
            if not problems and not assignable(got, key_type):
                out.append(
                    mismatch(
                        f"`by` gives {got}, but the key `{view.key.name}` "
                        f"of {view.name} is {key_type}",
                        on.by.loc,
                    )
                )
        if on.condition is not None:
            event_env = view_env(view, event, scope, test=True)
            out += _condition(on.condition, event_env, "an `on` line's `if`")
        row_env = view_env(view, event, scope)
        lets: dict[str, tuple[Type, Expr]] = {}
        if on.lets:
            lets, lines = let_types(on.lets, row_env)
            for _, _, problems in lines:
                out += problems
        for j, a in enumerate(on.assignments):
            env = row_env
            if on.lets:  # an assignment sees the `let`s written before it
                seen = {let.name: lets[let.name] for let in on.lets if let.after <= j}
                env = replace(row_env, lets=seen) if seen else row_env
            if a.target == view.key.name:
                out.append(
                    _not_a_field(
                        f"`{a.target}` is the key of view {view.name}: a row's key is not assigned",
                        a.loc,
                        "the row is picked by the event field named like the key, or by `by`",
                    )
                )
                out += infer(a.value, env)[1]
                continue
            if a.target not in row:
                out.append(
                    _not_a_field(
                        f"`{a.target}` is not a column of view {view.name}",
                        a.loc,
                        did_you_mean(a.target, [c for c in row if c != view.key.name]),
                    )
                )
                out += infer(a.value, env)[1]
                continue
            target = row[a.target]
            out += _assign(a, target, env)
    return out


# ---------------------------------------------------------------- processes


def _check_process(process: Process, context: Context, scope: Scope) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    out += _defaults([process.key], context, scope)
    out += _defaults(process.fields, context, scope)
    state = process_state(process, scope)
    key_type = state[process.key.name]
    for handler in process.handlers:
        event: Event | None = None
        if handler.event is not None:
            found = scope.resolve(context, handler.event.name, EVENT_KINDS)
            if found is None or not isinstance(found.element, Event):
                continue  # E102
            event = found.element
        if handler.by is not None and event is not None:
            got, problems = infer(handler.by, process_env(process, event, scope, state=False))
            out += problems
            if not problems and not assignable(got, key_type):
                why = f"`by` gives {got}, but the key `{process.key.name}` of {process.name}"
                out.append(mismatch(f"{why} is {key_type}", handler.by.loc))
        out += _process_lines(process, handler, process_env(process, event, scope), state)
    return out


def _process_lines(
    process: Process, handler: ProcessOn, env: Env, state: dict[str, Type]
) -> list[Diagnostic]:
    """A process handler's `if` and lines: assignments to its state fields (seeing the
    state before), then `let`s, `then`, `timer` and `end` lines."""
    out: list[Diagnostic] = []
    if handler.condition is not None:
        out += _condition(handler.condition, env, "a process handler's `if`")
    env = narrowed_by(handler.condition, env)
    lets: dict[str, tuple[Type, Expr]] = {}
    if handler.lets:
        lets, lines = let_types(handler.lets, env)
        for _, _, problems in lines:
            out += problems
    for a in handler.assignments:
        if a.target not in state or a.target == process.key.name:
            fields = [f for f in state if f != process.key.name]
            why = f"`{a.target}` is not a state field of process {process.name}"
            out.append(_not_a_field(why, a.loc, did_you_mean(a.target, fields)))
            out += infer(a.value, env)[1]
            continue
        out += _assign(a, state[a.target], env)
    env = replace(env, lets=lets) if lets else env
    for then in handler.thens:
        out += _then_line(then, env, env.context, env.scope)
    for timer in handler.timers:
        value, wanted = (timer.after, DURATION) if timer.after is not None else (timer.at, DATETIME)
        assert value is not None
        got, problems = infer(value, env, wanted)
        out += problems
        if not problems and got is not UNKNOWN and not assignable(got, wanted):
            word = "after" if wanted is DURATION else "at"
            out.append(mismatch(f"`timer ... {word}` needs a {wanted}, not {got}", value.loc))
    for end in handler.ends:
        if end.condition is not None:
            out += _condition(end.condition, env, "an `end` line's `if`")
    return out


def _check_order(view: View, row: dict[str, Type]) -> list[Diagnostic]:
    """E403 for an `order by` column the view does not have or cannot sort on."""
    out: list[Diagnostic] = []
    pii = {f.name for f in view.fields if f.pii}
    for item in view.order:
        name = item.field
        if name not in row:
            help_ = did_you_mean(name, list(row))
            why = f"`{name}` is not a column of view {view.name}: it cannot order the rows"
            out.append(_not_a_field(why, item.loc, help_))
        elif name in pii:
            why = f"`{name}` holds personal data (pii): stored encrypted, it cannot order the rows"
            out.append(_not_a_field(why, item.loc, "order by a column without `pii`"))
        elif isinstance(strip_optional(row[name]), ListType | ValueType):
            why = f"`{name}` is a {row[name]}: rows are ordered by plain columns only"
            help_ = "order by a number, text, date, time, duration, bool or enum column"
            out.append(_not_a_field(why, item.loc, help_))
    return out


# ---------------------------------------------------------------- shared


def _not_a_field(message: str, loc: Location, help_: str | None) -> Diagnostic:
    return Diagnostic("E403", Level.ERROR, message, loc, help_)


def _condition(expr: Expr, env: Env, what: str) -> list[Diagnostic]:
    got, problems = infer(expr, env, BOOL)
    if not problems and got != BOOL and got is not UNKNOWN:
        problems.append(mismatch(f"{what} must be bool, not {got}", expr.loc))
    return problems


def _assign(
    a: Assignment, target: Type, env: Env, plain_only: str | None = None
) -> list[Diagnostic]:
    """Check ``target op value``: the value fits the target, ``+=``/``-=`` on what allows it."""
    got, problems = infer(a.value, env, target)
    if problems or got is UNKNOWN or target is UNKNOWN:
        return problems
    if a.op == "=":
        if not assignable(got, target):
            return [mismatch(f"cannot assign {got} to `{a.target}` ({target})", a.value.loc)]
        return []
    if plain_only is not None:
        return [
            mismatch(
                f"`{a.op}` cannot set {plain_only}: it has no earlier value",
                a.loc,
                f"write '{a.target} = ...'",
            )
        ]
    verb, prep = ("add", "to") if a.op == "+=" else ("subtract", "from")
    if isinstance(target, OptionalType):
        return [
            mismatch(
                f"cannot {verb} {prep} `{a.target}`: it may be none ({target})",
                a.loc,
                f"write '{a.target} = ...' instead",
            )
        ]
    cannot = f"cannot {verb} {got} {prep} `{a.target}` ({target})"
    if is_numeric(target):
        if is_numeric(got) and assignable(got, target):
            return []
        return [mismatch(cannot, a.value.loc)]
    if a.op == "+=" and isinstance(target, ListType):
        if isinstance(got, ListType) and assignable(got, target):
            return []
        help_ = None
        if assignable(got, target.element):
            help_ = f"to add one item, wrap it in a list: '{a.target} += [...]'"
        return [mismatch(cannot, a.value.loc, help_)]
    if a.op == "+=" and target == STR:
        return [] if got == STR else [mismatch(cannot, a.value.loc)]
    needs = "a number, a list or a str" if a.op == "+=" else "a number"
    return [mismatch(f"`{a.op}` needs {needs}, and `{a.target}` is {target}", a.loc)]
