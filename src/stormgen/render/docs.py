"""The ``docs`` target: Markdown, an index page and one page per bounded context.

Each context page has its event-flow diagram (Mermaid, which GitHub renders), its
aggregates with their state, commands, events, external systems, policies and views
with every field (type, default, pii, description), who publishes and who consumes
each event, and the open hotspots. Everything shown is computed here; the templates
in ``templates/docs/`` only print it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stormgen.model.nodes import (
    Aggregate,
    Command,
    Context,
    Enum,
    Event,
    External,
    Field,
    Hotspot,
    Model,
    Passing,
    RowExpectation,
    Scenario,
    ScenarioMessage,
    Value,
    View,
)
from stormgen.render.diagram import context_map, event_flow, to_mermaid
from stormgen.render.environment import make_environment
from stormgen.render.output import Progress
from stormgen.render.text import assignment, expression, then_tail, timer_due

if TYPE_CHECKING:
    from stormgen import LoadedModel


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell (no pipes, no raw HTML, one line)."""
    return (
        str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")
    )


def inline(text: str | None) -> str:
    """Model text safe in Markdown prose: no raw HTML."""
    return (text or "").replace("<", "&lt;")


def anchor(name: str) -> str:
    """GitHub's heading anchor for a heading that is just an identifier."""
    return name.lower()


@dataclass
class FieldRow:
    name: str
    type: str
    default: str
    pii: str
    description: str


@dataclass
class Section:
    """One command, event, policy or view: a heading, facts, a field table, lines."""

    name: str
    facts: list[str] = field(default_factory=list)
    fields: list[FieldRow] = field(default_factory=list)
    lists: list[tuple[str, list[str]]] = field(default_factory=list)
    description: str = ""


@dataclass
class OwnerDoc:
    """An aggregate or external system with its commands and events."""

    name: str
    kind: str
    description: str
    facts: list[str]
    state: list[FieldRow]
    commands: list[Section]
    events: list[Section]


@dataclass
class ContextDoc:
    name: str
    file: str
    description: str
    relations: list[str]
    neighbours: str  # the context map around this context (empty when it has no relation)
    flow: str
    owners: list[OwnerDoc]
    policies: list[Section]
    views: list[Section]
    types: list[Section]
    processes: list[Section]
    hotspots: list[str]
    counts: dict[str, int]
    scenarios: list[Section] = field(default_factory=list)  # its specification by example


def _rows(fields: tuple[Field, ...]) -> list[FieldRow]:
    return [
        FieldRow(
            name=cell(f.name) + (f" (was `{f.was}`)" if f.was else ""),
            type=cell(str(f.type)),
            default=cell(expression(f.default)) if f.default is not None else "",
            pii="yes" if f.pii else "",
            description=cell(f.description or ""),
        )
        for f in fields
    ]


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _hotspots(where: str, hotspots: tuple[Hotspot, ...]) -> list[str]:
    return [f"{where}: {inline(h.text)}" for h in hotspots]


class _Docs:
    def __init__(self, model: Model, graph: Any) -> None:
        self.model = model
        self.graph = graph
        # event node id -> consumers ("policy Bar.QueuePaidOrder"), publishers
        self.consumers: dict[str, list[str]] = defaultdict(list)
        self.emitters: dict[str, list[str]] = defaultdict(list)
        self.issuers: dict[str, list[str]] = defaultdict(list)
        for u, v, d in graph.edges(data=True):
            if d["kind"] in ("triggers", "feeds", "consumes"):
                kind = graph.nodes[v]["kind"]
                self.consumers[u].append(f"{kind} {_link(v, graph.nodes[u]['context'])}")
            elif d["kind"] == "emits":
                self.emitters[v].append(_link(u, graph.nodes[v]["context"]))
            elif d["kind"] == "issues":
                kind = graph.nodes[u]["kind"]
                self.issuers[v].append(f"{kind} {_link(u, graph.nodes[v]['context'])}")
        # context -> its scenarios; a top-level one goes with the context its `when` names
        self.scenarios: dict[str, list[Scenario]] = defaultdict(list)
        for c in model.contexts:
            self.scenarios[c.name] += c.scenarios
        for s in model.scenarios:
            named = s.when if isinstance(s.when, ScenarioMessage) else (s.given or [None])[0]
            home = named.message.name.split(".", 1)[0] if named is not None else ""
            self.scenarios[home].append(s)

    def command(self, context: Context, owner: Aggregate | External, c: Command) -> Section:
        nid = _message_id("command", context, owner, c.name)
        facts = []
        if isinstance(owner, Aggregate):
            facts.append("creates a new instance" if c.creates else "acts on an existing instance")
            facts.append(
                "issued by actors " + ", ".join(_code(a.name) for a in c.actors)
                if c.actors
                else "internal: issued by policies only"
            )
        else:
            facts.append(f"a request sent to the external system {_code(owner.name)}")
        lists = [
            ("Issued by", self.issuers.get(nid, [])),
            ("Names", [_code(f"let {x.name} = {expression(x.value)}") for x in c.lets]),
            (
                "Requires",
                [
                    f"{_code(expression(r.condition))} else “{inline(r.message)}”"
                    for r in c.requires
                ],
            ),
            ("Emits", [self._emit(e) for e in c.emits]),
            ("Open questions", [inline(h.text) for h in c.hotspots]),
        ]
        fields = c.fields
        if isinstance(owner, Aggregate):
            fields = (owner.id_field, *fields)
        return Section(
            name=c.name,
            description=inline(c.description),
            facts=facts,
            fields=_rows(fields),
            lists=[(t, items) for t, items in lists if items],
        )

    @staticmethod
    def _emit(e: Any) -> str:
        text = _code(e.event.name)
        if e.assignments:
            text += " with " + ", ".join(_code(assignment(a)) for a in e.assignments)
        if e.condition is not None:
            text += f" if {_code(expression(e.condition))}"
        return text

    def event(self, context: Context, owner: Aggregate | External, e: Event) -> Section:
        nid = _message_id("event", context, owner, e.name)
        facts = [f"version {e.version}"]
        if isinstance(owner, External):
            facts.append(f"comes in from the external system {_code(owner.name)}")
        else:
            facts.append(
                "published: other contexts may consume it"
                if e.published
                else "private to " + context.name
            )
        lists = [
            ("Emitted by", self.emitters.get(nid, [])),
            ("Consumed by", self.consumers.get(nid, [])),
            ("Apply", [_code(assignment(a)) for a in e.apply]),
            ("Open questions", [inline(h.text) for h in e.hotspots]),
        ]
        fields = e.fields
        if isinstance(owner, Aggregate):
            fields = (owner.id_field, *fields)
        return Section(
            name=e.name,
            description=inline(e.description),
            facts=facts,
            fields=_rows(fields),
            lists=[(t, items) for t, items in lists if items],
        )

    def context(self, context: Context) -> ContextDoc:
        relations = []
        for r in self.model.relations:
            if context.name not in (r.left.name, r.right.name):
                continue
            if r.kind == "<->":
                other = r.right.name if r.left.name == context.name else r.left.name
                kind = ", ".join(p.name for p in r.symmetric) or "symmetric"
                relations.append(f"{kind} with [{other}]({other}.md)")
            else:
                up = ", ".join(p.name for p in r.left_patterns)
                down = ", ".join(p.name for p in r.right_patterns)
                pats = "; ".join(
                    part
                    for part in (up and f"upstream {up}", down and f"downstream {down}")
                    if part
                )
                suffix = f" ({pats})" if pats else ""
                if r.left.name == context.name:
                    relations.append(f"upstream of [{r.right.name}]({r.right.name}.md){suffix}")
                else:
                    relations.append(f"downstream of [{r.left.name}]({r.left.name}.md){suffix}")
        owners: list[OwnerDoc] = []
        hotspots = _hotspots("context", context.hotspots)
        for a in context.aggregates:
            facts = [f"identity {_code(a.id_field.name + ': ' + str(a.id_field.type))}"]
            if a.snapshot_every:
                facts.append(f"snapshot every {a.snapshot_every} events")
            owners.append(
                OwnerDoc(
                    name=a.name,
                    kind="aggregate",
                    description=inline(a.description),
                    facts=facts,
                    state=_rows(a.state),
                    commands=[self.command(context, a, c) for c in a.commands],
                    events=[self.event(context, a, e) for e in a.events],
                )
            )
            hotspots += _hotspots(f"aggregate {a.name}", a.hotspots)
            for c in a.commands:
                hotspots += _hotspots(f"command {c.name}", c.hotspots)
            for e in a.events:
                hotspots += _hotspots(f"event {e.name}", e.hotspots)
        for x in context.externals:
            owners.append(
                OwnerDoc(
                    name=x.name,
                    kind="external system",
                    description=inline(x.description),
                    facts=[],
                    state=[],
                    commands=[self.command(context, x, c) for c in x.commands],
                    events=[self.event(context, x, e) for e in x.events],
                )
            )
        policies = []
        for p in context.policies:
            when = _code(p.when.name)
            if p.condition is not None:
                when += f" if {_code(expression(p.condition))}"
            thens = []
            for t in p.thens:
                line = _code(t.command.name)
                if t.assignments:
                    line += " with " + ", ".join(_code(assignment(a)) for a in t.assignments)
                if then_tail(t):
                    line += f" {_code(then_tail(t).strip())}"
                thens.append(line)
            lists = [("Then", thens), ("Open questions", [inline(h.text) for h in p.hotspots])]
            policies.append(
                Section(
                    name=p.name,
                    description=inline(p.description),
                    facts=[f"whenever {when}"],
                    lists=[(t, items) for t, items in lists if items],
                )
            )
            hotspots += _hotspots(f"policy {p.name}", p.hotspots)
        views = []
        for v in context.views:
            handlers = []
            for on in v.handlers:
                line = _code(on.event.name)
                if on.by is not None:
                    line += f" by {_code(expression(on.by))}"
                if on.condition is not None:
                    line += f" if {_code(expression(on.condition))}"
                if on.delete:
                    line += ": deletes the row"
                elif on.assignments:
                    line += ": " + ", ".join(_code(assignment(a)) for a in on.assignments)
                handlers.append(line)
            lists = [
                ("Updated on", handlers),
                ("Open questions", [inline(h.text) for h in v.hotspots]),
            ]
            views.append(
                Section(
                    name=v.name,
                    description=inline(v.description),
                    facts=[f"row key {_code(v.key.name + ': ' + str(v.key.type))}"]
                    + [_order_fact(v)] * bool(v.order),
                    fields=_rows((v.key, *v.fields)),
                    lists=[(t, items) for t, items in lists if items],
                )
            )
            hotspots += _hotspots(f"view {v.name}", v.hotspots)
        processes = []
        for pr in context.processes:
            handlers = []
            for h in pr.handlers:
                line = (
                    f"timer {_code(h.timer)}" if h.timer else _code(h.event.name if h.event else "")
                )
                if h.by is not None:
                    line += f" by {_code(expression(h.by))}"
                if h.condition is not None:
                    line += f" if {_code(expression(h.condition))}"
                if h.starts:
                    line += " (starts an instance)"
                does = [assignment(a) for a in h.assignments]
                does += [f"then {t.command.name}{then_tail(t)}" for t in h.thens]
                does += [f"timer {t.name} {timer_due(t)}" for t in h.timers]
                does += [f"cancel {c.name}" for c in h.cancels]
                does += [
                    "end" + (f" if {expression(e.condition)}" if e.condition else "")
                    for e in h.ends
                ]
                if does:
                    line += ": " + ", ".join(_code(x) for x in does)
                handlers.append(line)
            lists = [
                ("Consumes", handlers),
                ("Open questions", [inline(h.text) for h in pr.hotspots]),
            ]
            processes.append(
                Section(
                    name=pr.name,
                    description=inline(pr.description),
                    facts=[f"instance key {_code(pr.key.name + ': ' + str(pr.key.type))}"],
                    fields=_rows(pr.fields),
                    lists=[(t, items) for t, items in lists if items],
                )
            )
            hotspots += _hotspots(f"process {pr.name}", pr.hotspots)
        types = [_type_section(t) for t in context.values] + [
            _type_section(t) for t in context.enums
        ]
        counts = {
            "aggregates": len(context.aggregates),
            "commands": sum(len(a.commands) for a in context.aggregates),
            "events": sum(len(a.events) for a in context.aggregates),
            "policies": len(context.policies),
            "views": len(context.views),
            "processes": len(context.processes),
            "hotspots": len(hotspots),
        }
        flow = to_mermaid(event_flow(self.graph, context.name))
        neighbours = to_mermaid(context_map(self.graph, context.name)) if relations else ""
        return ContextDoc(
            name=context.name,
            file=f"{context.name}.md",
            description=inline(context.description),
            relations=relations,
            neighbours=neighbours,
            flow=flow,
            owners=owners,
            policies=policies,
            views=views,
            types=types,
            processes=processes,
            hotspots=hotspots,
            counts=counts,
            scenarios=[_scenario(s) for s in self.scenarios.get(context.name, [])],
        )


def _scenario_message(m: ScenarioMessage) -> str:
    line = _code(m.message.name)
    if m.assignments:
        line += " with " + ", ".join(_code(assignment(a)) for a in m.assignments)
    return line


def _scenario_when(when: ScenarioMessage | Passing) -> str:
    if isinstance(when, Passing):
        return f"{_code(expression(when.duration))} pass"
    return _scenario_message(when)


def _scenario(s: Scenario) -> Section:
    """A scenario as its given, when and then lines."""
    thens: list[str] = []
    if s.rejected:
        thens.append("rejected" + (f": “{inline(s.message)}”" if s.message else ""))
    elif not s.then:
        thens.append("nothing happens (no event, no command)")
    for item in s.then:
        if isinstance(item, RowExpectation):
            line = f"row {_code(f'{item.view.name}[{expression(item.key)}]')}"
            if item.assignments:
                line += " with " + ", ".join(_code(assignment(a)) for a in item.assignments)
            thens.append(line)
        else:
            thens.append(_scenario_message(item))
    lists = [
        ("Given", [_scenario_message(g) for g in s.given]),
        ("When", [_scenario_when(s.when)]),
        ("Then", thens),
    ]
    return Section(name=inline(s.name), lists=[(t, items) for t, items in lists if items])


def _type_section(t: Value | Enum) -> Section:
    if isinstance(t, Enum):
        return Section(
            name=t.name,
            description=inline(t.description),
            facts=["enum: " + ", ".join(_code(m.name) for m in t.members)],
        )
    return Section(
        name=t.name, description=inline(t.description), facts=["value"], fields=_rows(t.fields)
    )


def _message_id(kind: str, context: Context, owner: Aggregate | External, name: str) -> str:
    if isinstance(owner, External):
        return f"{kind}:{context.name}.{owner.name}.{name}"
    return f"{kind}:{context.name}.{name}"


def _link(nid: str, from_context: str | None) -> str:
    """A graph node as a Markdown link to its context page (same page: just the anchor)."""
    qualified = nid.split(":", 1)[1]
    ctx, _, rest = qualified.partition(".")
    if not rest:
        return _code(qualified)  # a top-level actor
    name = rest.rsplit(".", 1)[-1]
    page = "" if ctx == from_context else f"{ctx}.md"
    label = rest if ctx == from_context else qualified
    return f"[{_code(label)}]({page}#{anchor(name)})"


def _order_fact(view: View) -> str:
    """A view's ``order by``, as its docs page states it."""
    keys = ", ".join(o.field + " desc" * o.desc for o in view.order)
    return f"listed by {_code(keys)}"


def render_docs(loaded: LoadedModel, progress: Progress | None = None) -> dict[str, str]:
    """Render ``index.md`` and ``<Context>.md`` for every context."""
    model, graph = loaded.model, loaded.graph
    env = make_environment("docs")
    docs = _Docs(model, graph)
    pages: dict[str, str] = {}
    contexts: list[ContextDoc] = []
    # A context declared twice (E101) gets one page, of its first declaration.
    unique = list({c.name: c for c in reversed(model.contexts)}.values())[::-1]
    page = env.get_template("context.md.jinja")
    for done, context in enumerate(unique, 1):
        doc = docs.context(context)
        contexts.append(doc)
        pages[doc.file] = page.render(ctx=doc, model_name=model.name)
        if progress is not None:
            progress(done, len(unique) + 1)
    actors = [(a.name, inline(a.description)) for a in model.actors]
    types = [_type_section(t) for t in model.values] + [_type_section(t) for t in model.enums]
    pages["index.md"] = env.get_template("index.md.jinja").render(
        name=model.name,
        description=inline(model.description),
        context_map=to_mermaid(context_map(graph)),
        contexts=contexts,
        actors=actors,
        types=types,
        hotspots=sum(c.counts["hotspots"] for c in contexts),
    )
    if progress is not None:
        progress(len(unique) + 1, len(unique) + 1)
    return pages
