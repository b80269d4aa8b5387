"""E401, E402, E403 on real `.storm` text: parsed by stormgen.lang, checked by check_expressions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stormgen.checks.expressions import check_expressions
from stormgen.lang import parse_model
from stormgen.model.scope import Scope

ROOT = Path(__file__).resolve().parents[2]

Finding = tuple[str, int, int, str, str | None]

# A small board every test extends: the line numbers of the snippets below count
# from the first line of this header.
HEADER = """\
enum Size { Small, Medium, Large }
enum Cup { Small, Mug }
value Drink { name: str, size: Size = Medium, price: decimal }
"""


def run(tmp_path: Path, text: str) -> list[Finding]:
    """Parse ``text`` (after HEADER) and return the E4xx findings as tuples."""
    path = tmp_path / "model.storm"
    path.write_text(HEADER + textwrap.dedent(text))
    model = parse_model(path)
    out = []
    for d in check_expressions(model, Scope(model)):
        assert d.location is not None
        assert d.location.file.endswith("model.storm")
        out.append((d.code, d.location.line, d.location.column, d.message, d.help))
    return out


def where(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """Line and column (1-based, counting HEADER) of the ``nth`` occurrence of ``needle``."""
    full = HEADER + textwrap.dedent(text)
    index = -1
    for _ in range(nth + 1):
        index = full.index(needle, index + 1)
    line = full.count("\n", 0, index) + 1
    column = index - (full.rfind("\n", 0, index) + 1) + 1
    return line, column


def order(body: str, extra: str = "") -> str:
    """An Ordering context with an Order aggregate whose command body is ``body``."""
    return f"""\
context Ordering {{
  enum OrderStatus {{ Placed, Paid, Cancelled }}
  aggregate Order {{
    id order_id: uuid
    state {{
      customer: str
      total: decimal = 0
      tip: float = 0
      status: OrderStatus = Placed
      tags: list[str] = []
      note: str? = none
    }}
    command Place creates {{
      customer: str
      total: decimal
      drinks: list[Drink]
      count: int
      {body}
      emit Placed
    }}
    event Placed {{ customer: str, total: decimal }}
    {extra}
  }}
}}
"""


# ---------------------------------------------------------------- valid models


def test_coffee_shop_has_no_expression_findings() -> None:
    model = parse_model(ROOT / "examples" / "coffee_shop.storm")
    assert check_expressions(model, Scope(model)) == []


def test_valid_expressions_everywhere(tmp_path: Path) -> None:
    text = order(
        """
      require len(drinks) > 0 and count >= 1 else "x"
      require total / count > 0.5 else "x"
      require count / 2 <= total else "x"
      require status == Placed or Paid == status else "x"
      require state.status in [Placed, Paid] else "x"
      require state.customer != customer else "x"
      require lower(customer) not in tags else "x"
      require "a" in customer else "x"
      require note == none or len(note) > 2 else "x"
      require note != none and upper(note) != "X" else "x"
      require min(total, 10) < max(count, 2.5) else "x"
      require today() == date(now()) else "x"
      require not (order_id == new_id()) else "x"
      require -total < 0 else "x"
      require Size.Small != Size.Large else "x"
        """,
        extra="""
    event Tagged { label: str
      apply { tags += [label], total -= 1, tip += 0.5, note = "n", customer += "!" }
    }
    event Retagged { apply { status = Cancelled, tags = tags + ["x"], note = none } }
        """,
    )
    assert run(tmp_path, text) == []


def test_valid_policy_and_view(tmp_path: Path) -> None:
    text = """\
context Ordering {
  enum OrderStatus { Placed, Paid }
  aggregate Order {
    id order_id: uuid
    state { status: OrderStatus = Placed }
    command Place creates { total: decimal  emit Placed }
    command Pay {
      amount: decimal  note: str = "paid"
      emit Paid { amount = amount * 2 } if amount > 0
    }
    published event Placed { total: decimal }
    event Paid { amount: decimal, apply { status = Paid } }
  }
  external Gateway {
    command Charge { order_id: uuid, amount: decimal }
    event Charged { order_id: uuid, amount: decimal }
  }
  policy ChargeOnPlace {
    when Placed if total > 0 and event.position >= 0
    then Gateway.Charge { amount = total + 1 }
  }
  policy PayWhenCharged {
    when Gateway.Charged if amount >= 0
    then Pay { order_id = order_id, note = "card " + upper("x") }
  }
  view Sales {
    key day: date
    orders: int = 0
    revenue: decimal = 0
    last: uuid?
    on Placed by date(event.recorded_at) { orders += 1, revenue += total, last = event.stream_id }
    on Paid by today() { revenue = row.revenue + amount }
  }
}
"""
    assert run(tmp_path, text) == []


# ---------------------------------------------------------------- E401


def test_unknown_name_in_require(tmp_path: Path) -> None:
    text = order('require totl > 0 else "x"')
    line, col = where(text, "totl")
    assert run(tmp_path, text) == [
        ("E401", line, col, "unknown name `totl`", "did you mean `total`?")
    ]


def test_unknown_qualified_name_and_enum_member(tmp_path: Path) -> None:
    text = order(
        """
      require state.stauts == Placed else "x"
      require status == OrderStatus.Payd else "x"
      require status == Shipped else "x"
        """
    )
    assert run(tmp_path, text) == [
        ("E401", *where(text, "state.stauts"), "unknown name `state.stauts`",
         "did you mean `state.status`?"),
        ("E401", *where(text, "OrderStatus.Payd"), "`Payd` is not a member of OrderStatus",
         "did you mean `Paid`?"),
        ("E401", *where(text, "Shipped"), "unknown name `Shipped`", None),
    ]  # fmt: skip


def test_qualifier_not_available(tmp_path: Path) -> None:
    text = order('require event.position > 0 else "x"')
    assert run(tmp_path, text) == [
        (
            "E401",
            *where(text, "event.position"),
            "unknown name `event.position`: there is no `event` here",
            "a command sees `command.`, `state.`",
        )
    ]


def test_ambiguous_enum_member(tmp_path: Path) -> None:
    text = order('require Small == Small else "x"')
    msg = "ambiguous name `Small`: a member of Size and Cup"
    help_ = "qualify it: `Size.Small` or `Cup.Small`"
    assert run(tmp_path, text) == [
        ("E401", *where(text, "Small =="), msg, help_),
        ("E401", *where(text, "Small else"), msg, help_),
    ]


def test_unknown_function(tmp_path: Path) -> None:
    text = order('require lenght(drinks) > 0 else "x"')
    assert run(tmp_path, text) == [
        ("E401", *where(text, "lenght"), "unknown function `lenght`", "did you mean `len`?")
    ]


def test_unknown_value_field(tmp_path: Path) -> None:
    text = order("", extra="event Picked { drink: Drink, apply { customer = drink.nmae } }")
    assert run(tmp_path, text) == [
        ("E401", *where(text, "drink.nmae"), "`nmae` is not a field of Drink",
         "did you mean `name`?")
    ]  # fmt: skip


def test_unknown_name_gets_no_e402_on_top(tmp_path: Path) -> None:
    text = order('require totl + tip > "a" else "x"')
    assert [f[0] for f in run(tmp_path, text)] == ["E401"]


def test_event_stream_id_not_on_external_events(tmp_path: Path) -> None:
    text = """\
context C {
  external Gateway { event Charged { amount: decimal } }
  view Log {
    key id: uuid
    on Gateway.Charged by event.stream_id
  }
}
"""
    assert run(tmp_path, text) == [
        ("E401", *where(text, "event.stream_id"), "unknown name `event.stream_id`",
         "an external system's event has no stream_id")
    ]  # fmt: skip


# ---------------------------------------------------------------- E402


def test_float_and_decimal_never_mix(tmp_path: Path) -> None:
    text = order('require total == tip else "x"')
    [(code, line, _col, message, help_)] = run(tmp_path, text)
    assert (code, line, message, help_) == (
        "E402",
        where(text, "total == tip")[0],
        "type mismatch: cannot compare decimal with float",
        "float and decimal never mix; declare both the same type",
    )


def test_require_must_be_bool(tmp_path: Path) -> None:
    text = order('require count + 1 else "x"')
    [(code, line, col, message, _)] = run(tmp_path, text)
    assert (code, line, message) == (
        "E402",
        where(text, "count + 1")[0],
        "type mismatch: a require condition must be bool, not int",
    )
    assert col == where(text, "count + 1")[1]


def test_enum_is_not_a_str(tmp_path: Path) -> None:
    text = order('require status == "Placed" else "x"')
    [(code, _, _, message, _)] = run(tmp_path, text)
    assert (code, message) == ("E402", "type mismatch: cannot compare OrderStatus with str")


def test_none_only_for_optionals(tmp_path: Path) -> None:
    text = order('require customer != none and len(note) > 1 else "x"')
    findings = run(tmp_path, text)
    assert [(f[0], f[3], f[4]) for f in findings] == [
        ("E402", "type mismatch: cannot compare str with none",
         "`customer` is never none; only an optional (T?) may be"),
        ("E402", "type mismatch: `note` may be none (str?)",
         "test it first: 'note != none and ...'"),
    ]  # fmt: skip
    assert findings[1][1:3] == where(text, "note)")


@pytest.mark.parametrize(
    ("field", "message", "help_"),
    [
        ("count: int = 4.5", "the default of `count` must be int, not 4.5 (decimal)", None),
        ('count: int = "4"', "the default of `count` must be int, not \"4\" (str)", None),
        ("name: str = none", "the default of `name` must be str, not none",
         "make the field optional: 'name: str?'"),
        ("count: int = []", "the default of `count` must be int, not [] (empty list)",
         "only a list field may default to a list"),
        ("size: Size = Huge", "`Huge` is not a member of Size",
         "members: Small, Medium, Large"),
        ("size: Size = Larg", "`Larg` is not a member of Size", "did you mean `Large`?"),
        ("size: Size = Cup.Mug", "the default must be a member of Size, not of Cup", None),
        ("ok: bool = 1", "the default of `ok` must be bool, not 1 (int)", None),
        ("ratio: float = 2.5", None, None),
        ("money: decimal = -3", None, None),
        ("maybe: int? = none", None, None),
        ("size: Size? = Size.Small", None, None),
        ("sizes: list[Size] = [Small, Large]", None, None),
    ],
)  # fmt: skip
def test_defaults(tmp_path: Path, field: str, message: str | None, help_: str | None) -> None:
    text = f"context C {{\n  value V {{\n    {field}\n  }}\n}}\n"
    findings = run(tmp_path, text)
    if message is None:
        assert findings == []
        return
    line, column = where(text, field)
    column += field.index(" = ") + 3
    assert findings == [("E402", line, column, f"type mismatch: {message}", help_)]


def test_assignment_types(tmp_path: Path) -> None:
    text = order(
        "emit Placed { total = customer }",
        extra="""
    event Moved { apply { tip = total, tags += "x", status -= 1, note += "y" } }
        """,
    )
    assert [(f[0], f[3], f[4]) for f in run(tmp_path, text)] == [
        ("E402", "type mismatch: cannot assign str to `total` (decimal)", None),
        ("E402", "type mismatch: cannot assign decimal to `tip` (float)", None),
        ("E402", "type mismatch: cannot add str to `tags` (list[str])",
         "to add one item, wrap it in a list: 'tags += [...]'"),
        ("E402", "type mismatch: `-=` needs a number, and `status` is OrderStatus", None),
        ("E402", "type mismatch: cannot add to `note`: it may be none (str?)",
         "write 'note = ...' instead"),
    ]  # fmt: skip


def test_assignment_value_location(tmp_path: Path) -> None:
    text = order("emit Placed { total = customer }")
    [(_, line, col, _, _)] = run(tmp_path, text)
    assert (line, col) == where(text, "customer }")


def test_emit_if_and_policy_if_must_be_bool(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate A {
    command Go creates { n: int  emit Went if n }
    event Went { n: int }
  }
  policy P { when Went if n + 1  then Go }
}
"""
    line, column = where(text, "if n }")
    assert [(f[0], f[1], f[2], f[3]) for f in run(tmp_path, text)] == [
        ("E402", line, column + 3, "type mismatch: an emit's `if` must be bool, not int"),
        ("E402", *where(text, "n + 1"), "type mismatch: a policy's `if` must be bool, not int"),
    ]


def test_view_by_must_give_the_key_type(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate A {
    command Go creates { emit Went }
    event Went { }
  }
  view V {
    key day: date
    n: int = 0
    on Went by event.recorded_at { n += 1 }
  }
}
"""
    assert run(tmp_path, text) == [
        ("E402", *where(text, "event.recorded_at"),
         "type mismatch: `by` gives datetime, but the key `day` of V is date", None)
    ]  # fmt: skip


def test_view_by_does_not_see_the_row(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate A {
    command Go creates { emit Went }
    event Went { }
  }
  view V {
    key day: date
    on Went by row.day
  }
}
"""
    assert run(tmp_path, text) == [
        ("E401", *where(text, "row.day"), "unknown name `row.day`: there is no `row` here",
         "`by` picks the row, so it sees only the event")
    ]  # fmt: skip


def test_view_increment_of_a_column_filled_by_an_earlier_event(tmp_path: Path) -> None:
    # `n` has no default but the row is created by Went, which carries n: `+=` is fine.
    text = """\
context C {
  aggregate A {
    command Go creates { n: int  emit Went }
    command More { emit Grew }
    event Went { n: int }
    event Grew { }
  }
  view V {
    key a_id: uuid
    n: int
    on Went
    on Grew { n += 1 }
  }
}
"""
    assert run(tmp_path, text) == []


# ---------------------------------------------------------------- E403


def test_apply_target_not_a_state_field(tmp_path: Path) -> None:
    text = order("", extra="event Moved { apply { stauts = Paid } }")
    assert run(tmp_path, text) == [
        ("E403", *where(text, "stauts"), "`stauts` is not a field of the state of Order",
         "did you mean `status`?")
    ]  # fmt: skip


def test_apply_target_error_still_checks_the_value(tmp_path: Path) -> None:
    text = order("", extra="event Moved { apply { stauts = Payd } }")
    assert [f[0] for f in run(tmp_path, text)] == ["E403", "E401"]


def test_emit_target_not_an_event_field(tmp_path: Path) -> None:
    text = order("emit Placed { totl = total, order_id = new_id() }")
    assert run(tmp_path, text) == [
        ("E403", *where(text, "totl"), "`totl` is not a field of event Placed",
         "did you mean `total`?"),
        ("E403", *where(text, "order_id = new_id"),
         "`order_id` is the id of Order: an event always carries the id of the aggregate "
         "that emits it", None),
    ]  # fmt: skip


def test_then_target_not_a_command_field(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate Ticket {
    id ticket_id: uuid
    command Open creates { drink: str  emit Opened }
    event Opened { drink: str }
  }
  external Till { event Sold { sale_id: uuid, item: str } }
  policy P {
    when Till.Sold
    then Open { ticket_id = sale_id, drnk = item }
  }
}
"""
    assert run(tmp_path, text) == [
        ("E403", *where(text, "drnk"), "`drnk` is not a field of command Open",
         "did you mean `drink`?")
    ]  # fmt: skip


def test_view_target_not_a_column(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate A {
    command Go creates { emit Went }
    event Went { }
  }
  view V {
    key a_id: uuid
    count: int = 0
    on Went { cuont += 1, a_id = event.stream_id }
  }
}
"""
    assert run(tmp_path, text) == [
        ("E403", *where(text, "cuont"), "`cuont` is not a column of view V",
         "did you mean `count`?"),
        ("E403", *where(text, "a_id = "),
         "`a_id` is the key of view V: a row's key is not assigned",
         "the row is picked by the event field named like the key, or by `by`"),
    ]  # fmt: skip


# ---------------------------------------------------------------- lookup order


def test_message_field_shadows_state_field(tmp_path: Path) -> None:
    # The command's `status` (a str) comes before the state's `status` (an enum).
    text = order(
        """
      status: str
      require status == "new" else "x"
      require state.status == Placed else "x"
      require command.status != "old" else "x"
      require status == Placed else "x"
        """
    )
    assert [(f[0], f[1], f[3]) for f in run(tmp_path, text)] == [
        ("E402", where(text, "status == Placed", 1)[0],
         "type mismatch: cannot compare str with OrderStatus"),
    ]  # fmt: skip


def test_event_fields_then_state_in_apply(tmp_path: Path) -> None:
    # In `apply`, `total` is the event's (decimal); `state.tip` the state's (float).
    text = order(
        "",
        extra="""event Moved { total: int
      apply { tip = state.tip + total, customer = event.stream }
    }""",
    )
    assert run(tmp_path, text) == []


def test_expected_enum_beats_unique_member(tmp_path: Path) -> None:
    # `Small` is in Size and Cup: the field's type picks the enum.
    text = order("", extra="event Sized { size: Size = Small, cup: Cup = Small }")
    assert run(tmp_path, text) == []
    text = order('cup: Cup\n      require cup == Small and Mug == cup else "x"')
    assert run(tmp_path, text) == []


def test_other_contexts_event_types_resolve_in_their_context(tmp_path: Path) -> None:
    # OrderStatus is private to Ordering (E104 elsewhere); a Bar policy reading the
    # published event still types `status` as Ordering's enum, and finds `Paid` and
    # `Placed` through it (the expected enum), though Bar cannot name OrderStatus.
    text = """\
context Ordering {
  enum OrderStatus { Placed, Paid }
  aggregate Order {
    command Pay creates { emit Paid }
    published event Paid { status: OrderStatus = Paid, amount: decimal = 1 }
  }
}
context Bar {
  aggregate Ticket {
    id ticket_id: uuid
    command Open creates { amount: decimal  emit Opened }
    event Opened { amount: decimal }
  }
  policy Queue {
    when Ordering.Paid if status == Paid and event.stream_id != order_id
    then Open { ticket_id = order_id, amount = amount * 2 }
  }
  policy Wrong {
    when Ordering.Paid if status == Placed and status != Shipped
    then Open { ticket_id = amount }
  }
}
map { Ordering -> Bar }
"""
    findings = run(tmp_path, text)
    assert [(f[0], f[1:3], f[3]) for f in findings] == [
        ("E401", where(text, "Shipped"), "unknown name `Shipped`"),
        (
            "E402",
            where(text, "amount }"),
            "type mismatch: cannot assign decimal to `ticket_id` (uuid)",
        ),
    ]


def test_unresolved_elements_are_skipped(tmp_path: Path) -> None:
    # E102 is reported for the unknown event and command; their expressions are skipped.
    text = """\
context C {
  aggregate A {
    command Go creates { emit Nope { x = zzz } if yyy }
    event Went { }
  }
  policy P { when Nope if qqq  then Go }
  policy Q { when Went  then Nope { a = b } }
  view V { key a_id: uuid  on Nope by www { c = d } }
}
"""
    assert [(f[0], f[3]) for f in run(tmp_path, text)] == [("E401", "unknown name `yyy`")]


def test_external_command_targets(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate Order {
    command Place creates { total: decimal  emit Placed }
    event Placed { total: decimal }
  }
  external Gateway { command Charge { amount: decimal } }
  policy P {
    when Placed
    then Gateway.Charge { amount = total, order_id = order_id }
  }
}
"""
    assert run(tmp_path, text) == [
        ("E403", *where(text, "order_id = "), "`order_id` is not a field of command Charge", None)
    ]


def test_increment_only_where_there_is_an_earlier_value(tmp_path: Path) -> None:
    text = """\
context C {
  aggregate A {
    command Go creates { n: int  emit Went { n += 1 } }
    event Went { n: int }
  }
  policy P { when Went  then Go { n -= 1 } }
}
"""
    assert run(tmp_path, text) == [
        ("E402", *where(text, "n += 1"),
         "type mismatch: `+=` cannot set an event field: it has no earlier value",
         "write 'n = ...'"),
        ("E402", *where(text, "n -= 1"),
         "type mismatch: `-=` cannot set a command field: it has no earlier value",
         "write 'n = ...'"),
    ]  # fmt: skip


def test_policy_sees_only_the_event(tmp_path: Path) -> None:
    text = """\
context C {
  enum Phase { Open, Shut }
  aggregate A {
    state { phase: Phase = Open }
    command Go creates { emit Went }
    event Went { }
  }
  policy P { when Went if phase == Open  then Go }
}
"""
    assert run(tmp_path, text) == [
        ("E401", *where(text, "phase =="), "unknown name `phase`",
         "a policy has no state; it sees only the event")
    ]  # fmt: skip
