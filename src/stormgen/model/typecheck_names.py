"""The checker's names: fields, ``let``s, qualified names, value paths and enum members.

A mixin of :class:`stormgen.model.typecheck._Checker`; see :mod:`stormgen.model.typecheck`.
"""

from __future__ import annotations

from stormgen.diagnostics import Diagnostic, Level
from stormgen.model.hints import closest, did_you_mean, suggest
from stormgen.model.nodes import (
    Context,
    Enum,
    Lookup,
    Name,
    View,
)
from stormgen.model.typecheck_base import Binding, CheckerBase, mismatch, unknown_name
from stormgen.model.types import (
    UNKNOWN,
    EnumType,
    ListType,
    OptionalType,
    Type,
    ValueType,
    assignable,
    enum_type,
    field_type,
    make_optional,
    row_type,
    strip_optional,
    value_fields,
)

_QUALIFIERS = ("command", "event", "state", "row")
_VIEW = frozenset({"view"})
#: why E107 forbids reading another context's view
E107_HELP = (
    "a context reads only its own views: let the other context publish an event, "
    "and keep a view of it here"
)


def _enum_of(expected: Type | None) -> EnumType | None:
    t = strip_optional(expected) if expected is not None else None
    if isinstance(t, ListType):
        t = strip_optional(t.element)
    return t if isinstance(t, EnumType) else None


def _named(context: Context | None) -> str:
    return context.name if context is not None else "the top level"


class NameChecker(CheckerBase):
    """What a :class:`Name` means and its type."""

    def _name(self, e: Name, expected: Type | None, narrowed: frozenset[str]) -> Type:
        t = self._name_type(e, expected, narrowed)
        if isinstance(t, OptionalType) and e.dotted in narrowed:
            return t.inner
        return t

    def _name_type(self, e: Name, expected: Type | None, narrowed: frozenset[str]) -> Type:
        env = self.env
        head, rest = e.parts[0], e.parts[1:]
        if head in self.locals:
            self.bindings[id(e)] = Binding("local", head, rest)
            return self._walk(e, self.locals[head], 1, narrowed)
        if rest and head in _QUALIFIERS:
            return self._qualified(e, narrowed)
        if head in env.lets:
            self.bindings[id(e)] = Binding("let", head, rest)
            return self._walk(e, env.lets[head][0], 1, narrowed)
        found = env.lookup_field(head)
        if found is not None:
            ns, t = found
            self.bindings[id(e)] = Binding(ns.source, head, rest)
            return self._walk(e, t, 1, narrowed)
        if not rest:
            return self._member(e, head, expected)
        # ``Size.Medium`` or ``Context.Enum.Member``: the longest enum prefix.
        resolved = env.scope.resolve_type(env.context, ".".join(e.parts[:-1]))
        if resolved is not None and isinstance(resolved.element, Enum):
            et = enum_type(resolved.element, resolved.context)
            member = e.parts[-1]
            if member not in et.members:
                self.problems.append(
                    unknown_name(
                        f"`{member}` is not a member of {et.name}",
                        e.loc,
                        did_you_mean(member, et.members),
                    )
                )
                return UNKNOWN
            self.bindings[id(e)] = Binding("member", member, enum=et)
            return et
        candidates = [n for ns in env.namespaces for n in ns.fields] + [x.name for x in env.enums]
        self.problems.append(
            unknown_name(
                f"unknown name `{head}`", e.loc, did_you_mean(head, candidates) or env.note
            )
        )
        return UNKNOWN

    def _lookup(self, e: Lookup, narrowed: frozenset[str]) -> Type:
        """``View[key]``: the view's row type, optional unless a test proved it found."""
        env = self.env
        found = env.scope.resolve(env.context, e.view.name, _VIEW)
        view = found.element if found is not None else None
        if found is None or not isinstance(view, View):
            self.expr(e.key, None, narrowed)
            views = [v.name for v in env.context.views] if env.context is not None else []
            self.problems.append(
                unknown_name(
                    f"unknown view `{e.view.name}`", e.view.loc, did_you_mean(e.view.name, views)
                )
            )
            return UNKNOWN
        if found.context is not env.context:
            self.expr(e.key, None, narrowed)
            self.problems.append(
                Diagnostic(
                    "E107",
                    Level.ERROR,
                    f"`{e.view.name}[...]` reads a view of the {_named(found.context)} "
                    f"context from {_named(env.context)}",
                    e.view.loc,
                    E107_HELP,
                )
            )
            return UNKNOWN
        key_type = field_type(view.key, found.context, env.scope)
        got = self.expr(e.key, key_type, narrowed)
        if got is not UNKNOWN and key_type is not UNKNOWN and not assignable(got, key_type):
            self.problems.append(
                mismatch(
                    f"the key of {view.name} is {key_type}, not {got}",
                    e.key.loc,
                    f"look it up by its `{view.key.name}`",
                )
            )
        if not env.lookups:
            self.problems.append(
                mismatch(
                    f"{env.where} cannot read a view: `{view.name}[...]` stands in a "
                    "command's `require`, `let` or `emit`, in a policy, or in a process's "
                    "handler",
                    e.loc,
                    "a view's row changes with events that may not have reached it yet",
                )
            )
            return UNKNOWN
        proved = e.narrowed is not None and e.narrowed in narrowed
        self.bindings[id(e)] = Binding("lookup", view.name, e.path, found=proved)
        row = row_type(view, found.context)
        t: Type = row if proved else make_optional(row)
        so_far = e.narrowed or f"{view.name}[...]"
        for part in e.path:
            if isinstance(t, OptionalType):
                self.problems.append(
                    mismatch(
                        f"`{so_far}` may be none ({t}), so it has no field `{part}`",
                        e.loc,
                        f"test it first: '{so_far} != none and ...', or name it with `let`",
                    )
                )
                return UNKNOWN
            fields = value_fields(t, env.scope) if isinstance(t, ValueType) else {}
            if part not in fields:
                what = f"`{part}` is not a field of {t}" if fields else f"{t} has no fields"
                self.problems.append(unknown_name(what, e.loc, did_you_mean(part, fields)))
                return UNKNOWN
            t = fields[part]
            so_far += f".{part}"
        return t

    def _qualified(self, e: Name, narrowed: frozenset[str]) -> Type:
        env = self.env
        qualifier, name = e.parts[0], e.parts[1]
        ns = next((n for n in env.namespaces if n.qualifier == qualifier), None)
        if ns is None:
            available = ", ".join(f"`{n.qualifier}.`" for n in env.namespaces)
            hint = f"{env.where} sees {available}" if available else f"{env.where} sees no fields"
            if env.note is not None:
                hint = env.note
            self.problems.append(
                unknown_name(
                    f"unknown name `{qualifier}.{name}`: there is no `{qualifier}` here",
                    e.loc,
                    hint,
                )
            )
            return UNKNOWN
        # Envelope metadata wins over a field of the same name: `event.id` is always
        # the event's id (the field stays reachable by its plain name).
        if name in ns.metadata:
            self.bindings[id(e)] = Binding("metadata", name, e.parts[2:])
            return self._walk(e, ns.metadata[name], 2, narrowed)
        if name in ns.fields:
            self.bindings[id(e)] = Binding(ns.source, name, e.parts[2:])
            return self._walk(e, ns.fields[name], 2, narrowed)
        # Match the bare names: the shared `state.` prefix would make everything close.
        close = closest(name, [*ns.fields, *ns.metadata])
        help_ = suggest([f"{qualifier}.{c}" for c in close])
        if qualifier == "event" and name == "stream_id":
            help_ = "an external system's event has no stream_id"
        self.problems.append(unknown_name(f"unknown name `{qualifier}.{name}`", e.loc, help_))
        return UNKNOWN

    def _walk(self, e: Name, t: Type, start: int, narrowed: frozenset[str]) -> Type:
        """Follow ``a.b.c`` through value fields from ``e.parts[start]`` on."""
        for i in range(start, len(e.parts)):
            part = e.parts[i]
            so_far = ".".join(e.parts[:i])
            if t is UNKNOWN:
                return UNKNOWN
            if isinstance(t, OptionalType) and so_far not in narrowed:
                self.problems.append(
                    mismatch(
                        f"`{so_far}` may be none ({t}), so it has no field `{part}`",
                        e.loc,
                        f"test it first: '{so_far} != none and ...'",
                    )
                )
                return UNKNOWN
            t = strip_optional(t)
            if not isinstance(t, ValueType):
                self.problems.append(mismatch(f"`{so_far}` is {t}, which has no fields", e.loc))
                return UNKNOWN
            fields = value_fields(t, self.env.scope)
            if part not in fields:
                self.problems.append(
                    unknown_name(
                        f"`{part}` is not a field of {t.name}", e.loc, did_you_mean(part, fields)
                    )
                )
                return UNKNOWN
            t = fields[part]
        return t

    def _member(self, e: Name, name: str, expected: Type | None) -> Type:
        env = self.env
        wanted = _enum_of(expected)
        if wanted is not None and name in wanted.members:
            self.bindings[id(e)] = Binding("member", name, enum=wanted)
            return wanted
        having = [et for et in env.enums if name in et.members]
        if len(having) == 1:
            self.bindings[id(e)] = Binding("member", name, enum=having[0])
            return having[0]
        if len(having) > 1:
            listed = " or ".join(f"`{et.name}.{name}`" for et in having)
            self.problems.append(
                unknown_name(
                    f"ambiguous name `{name}`: a member of "
                    + " and ".join(et.name for et in having),
                    e.loc,
                    f"qualify it: {listed}",
                )
            )
            return UNKNOWN
        candidates = [n for ns in env.namespaces for n in ns.fields]
        if wanted is not None:
            candidates += wanted.members
        candidates += [m for et in env.enums for m in et.members]
        self.problems.append(
            unknown_name(
                f"unknown name `{name}`", e.loc, did_you_mean(name, candidates) or env.note
            )
        )
        return UNKNOWN
