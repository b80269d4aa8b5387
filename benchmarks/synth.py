"""Generate synthetic, valid `.storm` models of any size for the benchmarks.

``synth(n)`` writes ``n`` aggregates, ten per context, each with five commands, five
events, two policies and two views; the contexts form a chain in the context map and
each context's second policies consume the previous context's published events.

The expressions use the forms of language 2 throughout, so the benchmarks measure
their checks and their generated code: list comprehensions with `if`, `any`, `all`,
`sum`, `min` and `max` over generators, conditional expressions, values built with
`Entry { sku = s, qty = n }`, `let` in commands and in a view's block, lookups of a
view's row (`A1Summary[a1_id]`, `A1Labels[label]`) in guards and in a policy's
condition, a policy's fan-out (`then C {...} for x in L if C`), `on E ... if C` in a
view, and durations (`minutes(15)`, `at - now()`, `due + window`).

Usage: ``python benchmarks/synth.py N > model.storm``
"""

from __future__ import annotations

import sys

AGGREGATES_PER_CONTEXT = 10

HEADER = """\
actor User "Anyone using the system"
value Entry { sku: str, qty: int = 1 }
"""


def _aggregate(c: int, i: int) -> str:
    a = f"A{i}"
    ident = f"a{i}_id"
    return f"""
  aggregate {a} "Synthetic aggregate {i}" {{
    id {ident}: uuid
    snapshot every 100
    state {{
      label: str = ""
      count: int = 0
      status: Status = Open
      tags: list[str] = []
      entries: list[Entry] = []
      window: duration = minutes(15)
    }}

    command Create{a} by User creates {{
      label: str
      tags: list[str] = []
      require len(label) > 0 else "a label is needed"
      require all(t != "" for t in tags) else "an empty tag"
      require {a}Labels[label] == none or {a}Labels[label].uses < 10 else "a label used too often"
      emit {a}Created {{ tags = [lower(t) for t in tags if len(t) < 40] }}
    }}

    command Rename{a} by User {{
      label: str
      let known = {a}Summary[{ident}]
      require label != "" and status == Open else "only an open item can be renamed"
      require all(t != "" for t in tags) else "an empty tag"
      require known == none or known.label != label else "that is the label already"
      emit {a}Renamed
    }}

    command Count{a} by User {{
      amount: int
      sku: str = "any"
      let held = sum(e.qty for e in entries if e.sku == sku)
      require amount > 0 else "the amount must be positive"
      require not any(e.qty > 1000 for e in entries if e.sku == sku) else "a full entry"
      require held + amount <= 100000 else "too many of one sku"
      emit {a}Counted {{
        amount = amount * 2 - 1 if amount > 1 else amount
        entries = [e for e in entries if e.sku != sku]
          + [Entry {{ sku = sku, qty = held + amount }}]
        largest = max(e.qty for e in entries)
      }}
    }}

    command Close{a} by User {{
      at: datetime
      require status == Open else "already closed"
      require at - now() <= days(1) else "close within a day"
      require min(e.qty for e in entries) != 0 else "an empty entry"
      emit {a}Closed {{ due = at + window if len(entries) > 0 else at }}
    }}

    command Reopen{a} {{
      require status == Closed else "not closed"
      emit {a}Reopened
    }}

    published event {a}Created {{
      label: str
      tags: list[str]
    }}

    event {a}Renamed {{
      label: str
      tags: list[str]
    }}

    event {a}Counted {{
      amount: int
      entries: list[Entry]
      largest: int?
      apply {{ count += amount }}
    }}

    published event {a}Closed {{
      at: datetime
      due: datetime
      apply {{ status = Closed }}
    }}

    event {a}Reopened {{
      apply {{ status = Open }}
    }}
  }}

  policy ReopenWhenCounted{i} {{
    when {a}Counted if amount > 100 and {a}Summary[{ident}] != none and {a}Summary[{ident}].closed
    then Reopen{a}
  }}
{_second_policy(c, i)}
  view {a}Summary {{
    key {ident}: uuid
    label: str
    count: int = 0
    skus: int = 0
    closed: bool = false
    late_by: duration = seconds(0)
    on {a}Created
    on {a}Renamed
    on {a}Counted {{
      let kept = [e for e in entries if e.qty > 0]
      count += amount, skus = len(kept)
    }}
    on {a}Closed {{
      closed = true
      late_by = event.recorded_at - due if event.recorded_at > due else seconds(0)
    }}
    on {a}Reopened {{ closed = false }}
  }}

  view {a}Labels {{
    key label: str
    uses: int = 0
    tagged: int = 0
    on {a}Created {{ uses += 1, tagged += 1 if len(tags) > 0 else 0 }}
    on {a}Renamed if label != "" and not any(t == label for t in tags) {{ uses += 1 }}
  }}
"""


def _second_policy(c: int, i: int) -> str:
    a = f"A{i}"
    if c == 0:
        return f"""
  policy CountWhenRenamed{i} {{
    when {a}Renamed
    then Count{a} {{ amount = len(t), sku = t }} for t in tags if t != label
  }}
"""
    j = i - AGGREGATES_PER_CONTEXT
    return f"""
  policy CreateFromUpstream{i} {{
    when C{c - 1}.A{j}Created if len(label) < 200
    then Create{a} {{
      a{i}_id = a{j}_id
      label = "from " + label
      tags = [upper(t) for t in tags if not startswith(t, "_")]
    }}
  }}
"""


def synth(aggregates: int) -> str:
    """The text of a valid model with ``aggregates`` aggregates."""
    contexts = (aggregates + AGGREGATES_PER_CONTEXT - 1) // AGGREGATES_PER_CONTEXT
    out = [f'model Synth{aggregates} "A synthetic model with {aggregates} aggregates"\n']
    out.append(HEADER)
    for c in range(contexts):
        out.append(f'\ncontext C{c} "Synthetic context {c}" {{\n')
        out.append("  enum Status { Open, Closed }\n")
        first = c * AGGREGATES_PER_CONTEXT
        for i in range(first, min(first + AGGREGATES_PER_CONTEXT, aggregates)):
            out.append(_aggregate(c, i))
        out.append("}\n")
    out.append("\nmap {\n")
    for c in range(contexts - 1):
        out.append(f"  C{c} [OHS, PL] -> [CF] C{c + 1}\n")
    out.append("}\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(synth(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
