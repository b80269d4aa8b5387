"""Generate synthetic, valid `.storm` models of any size for the benchmarks.

``synth(n)`` writes ``n`` aggregates, ten per context, each with five commands, five
events, two policies and a view; the contexts form a chain in the context map and each
context's second policies consume the previous context's published events. The guards
and emits use language 2 forms too: `all(t != "" for t in tags)` and
`A if C else B`.

Usage: ``python benchmarks/synth.py N > model.storm``
"""

from __future__ import annotations

import sys

AGGREGATES_PER_CONTEXT = 10


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
    }}

    command Create{a} by User creates {{
      label: str
      require len(label) > 0 else "a label is needed"
      emit {a}Created
    }}

    command Rename{a} by User {{
      label: str
      require label != "" and status == Open else "only an open item can be renamed"
      require all(t != "" for t in tags) else "an empty tag"
      emit {a}Renamed
    }}

    command Count{a} by User {{
      amount: int
      require amount > 0 else "the amount must be positive"
      emit {a}Counted {{ amount = amount * 2 - 1 if amount > 1 else amount }}
    }}

    command Close{a} by User {{
      require status == Open else "already closed"
      emit {a}Closed
    }}

    command Reopen{a} {{
      require status == Closed else "not closed"
      emit {a}Reopened
    }}

    published event {a}Created {{
      label: str
    }}

    event {a}Renamed {{
      label: str
    }}

    event {a}Counted {{
      amount: int
      apply {{ count += amount }}
    }}

    published event {a}Closed {{
      apply {{ status = Closed }}
    }}

    event {a}Reopened {{
      apply {{ status = Open }}
    }}
  }}

  policy ReopenWhenCounted{i} {{
    when {a}Counted if amount > 100
    then Reopen{a}
  }}
{_second_policy(c, i)}
  view {a}Summary {{
    key {ident}: uuid
    label: str
    count: int = 0
    closed: bool = false
    on {a}Created
    on {a}Renamed
    on {a}Counted {{ count += amount }}
    on {a}Closed {{ closed = true }}
    on {a}Reopened {{ closed = false }}
  }}
"""


def _second_policy(c: int, i: int) -> str:
    a = f"A{i}"
    if c == 0:
        return f"""
  policy CountWhenRenamed{i} {{
    when {a}Renamed
    then Count{a} {{ amount = 1 }}
  }}
"""
    j = i - AGGREGATES_PER_CONTEXT
    return f"""
  policy CreateFromUpstream{i} {{
    when C{c - 1}.A{j}Created
    then Create{a} {{ a{i}_id = a{j}_id, label = "from " + label }}
  }}
"""


def synth(aggregates: int) -> str:
    """The text of a valid model with ``aggregates`` aggregates."""
    contexts = (aggregates + AGGREGATES_PER_CONTEXT - 1) // AGGREGATES_PER_CONTEXT
    out = [f'model Synth{aggregates} "A synthetic model with {aggregates} aggregates"\n']
    out.append('actor User "Anyone using the system"\n')
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
