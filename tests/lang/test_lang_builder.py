"""Every construct of the language maps to the right node of the model, with its location."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from stormgen.diagnostics import Location
from stormgen.model import nodes as n

Parse = Callable[..., n.Model]

BOARD = """\
model Shop "A shop \\"with\\" escapes\\nand a newline \\\\ backslash"

actor Customer "Buys things"
enum Size { Small, Medium, Large }
value Drink "One drink" {
  name: str
  size: Size = Size.Medium
}

context Ordering "Takes orders" {
  actor Clerk
  enum OrderStatus { Placed, Paid }
  value Note { text: str }
  hotspot "Who owns refunds?"

  aggregate Order "An order" {
    id order_no: str
    snapshot every 50
    state {
      customer: str pii
      drinks: list[Drink] = []
      total: decimal = 0
      discount: decimal = -1.5
      note: str? = none
      status: OrderStatus = Placed
      state: str = "open"
      count: int = 0 was number "how many"
    }
    hotspot "Split orders?"

    command PlaceOrder by Customer, Clerk creates "Order drinks" {
      customer: str pii
      drinks: list[Drink]
      require len(drinks) > 0 else "no drinks"
      emit OrderPlaced { total = 0 } if len(drinks) > 0
      emit OrderNoted
      hotspot "Limits?"
    }

    command Pay {
      amount: decimal
      emit OrderPaid
    }

    published event OrderPlaced v3 "Placed" {
      customer: str pii
      drinks: list[Drink]
      total: decimal = 0
      apply { total += 1, count -= 1 status = Placed }
      hotspot "Rename?"
    }
    event OrderNoted
    event OrderPaid { amount: decimal }
  }

  external Gateway "Cards" {
    command Charge { order_no: str, amount: decimal }
    event Charged { order_no: str }
  }

  policy ChargeOnOrder "Charge" {
    hotspot "Retry?"
    when OrderPlaced if total > 0
    then Gateway.Charge { amount = total }
    then Pay { amount = total * 2 }
    hotspot "Twice?"
  }

  view History "Orders" {
    key order_no: str
    total: decimal = 0
    on OrderPlaced
    on OrderPaid by order_no { total += amount }
    on Gateway.Charged delete
    hotspot "Paging?"
  }
}

context Bar { }

map {
  Ordering [OHS, PL] -> [CF] Bar
  Bar <-> Ordering [partnership]
  Ordering -> Bar
}
"""


def at(line: int, column: int) -> Location:
    return Location("model.storm", line, column)


def where(needle: str, within: str = "", text: str = BOARD) -> Location:
    """The location of ``needle`` in the board (after ``within``, to pick one of several)."""
    start = text.index(within) if within else 0
    offset = text.index(needle, start)
    line = text.count("\n", 0, offset) + 1
    return at(line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def test_model_header_and_top_level_elements(parse: Parse) -> None:
    m = parse(BOARD)
    assert m.name == "Shop" and m.name_declared
    assert m.description == 'A shop "with" escapes\nand a newline \\ backslash'
    assert m.loc == at(1, 1)
    assert [f.path for f in m.files] == ["model.storm"]
    assert m.actors == (n.Actor("Customer", at(3, 1), "Buys things"),)
    size = m.enums[0]
    assert [e.name for e in size.members] == ["Small", "Medium", "Large"]
    assert size.members[1].loc == where("Medium")
    drink = m.values[0]
    assert drink.description == "One drink"
    assert drink.fields[1].default == n.Name(("Size", "Medium"), where("Size.Medium"))


def test_context_members(parse: Parse) -> None:
    ordering = parse(BOARD).contexts[0]
    assert ordering.name == "Ordering" and ordering.description == "Takes orders"
    assert ordering.loc == where("context Ordering")
    assert [a.name for a in ordering.actors] == ["Clerk"]
    assert [e.name for e in ordering.enums] == ["OrderStatus"]
    assert [v.name for v in ordering.values] == ["Note"]
    assert ordering.hotspots == (n.Hotspot("Who owns refunds?", where('hotspot "Who')),)
    assert [x.name for x in ordering.externals] == ["Gateway"]


def test_aggregate_id_snapshot_and_state(parse: Parse) -> None:
    order = parse(BOARD).contexts[0].aggregates[0]
    assert order.loc == where("aggregate Order") and order.description == "An order"
    assert order.id_declared
    assert order.id_field == n.Field(
        "order_no", n.TypeRef("str", where("str", "id order_no")), where("order_no")
    )
    assert order.snapshot_every == 50
    state = {f.name: f for f in order.state}
    assert state["customer"].pii
    assert state["drinks"].type == n.TypeRef(
        "list", where("list[Drink] = []"), n.TypeRef("Drink", where("Drink] = []")), False
    )
    assert state["drinks"].default == n.ListExpr((), where("[]"))
    assert state["total"].default == n.Literal(0, "int", where("0", "total: decimal ="))
    assert state["discount"].default == n.Literal(Decimal("-1.5"), "decimal", where("-1.5"))
    assert state["note"].type == n.TypeRef("str", where("str?"), None, True)
    assert state["note"].default == n.Literal(None, "none", where("none", "note:"))
    assert state["status"].default == n.Name(("Placed",), where("Placed", "status: Order"))
    # A field may be named like a keyword where that is unambiguous.
    assert state["state"].loc == where("state: str")
    assert state["state"].default == n.Literal("open", "str", where('"open"'))
    count = state["count"]
    assert (count.was, count.description, count.pii) == ("number", "how many", False)
    assert order.hotspots == (n.Hotspot("Split orders?", where('hotspot "Split')),)


def test_implicit_id_is_the_snake_case_name() -> None:
    from stormgen.lang.loader import parse_text

    parts = parse_text("context C { aggregate OrderLine { } }", "f.storm")
    assert not isinstance(parts, list)
    agg = parts.contexts[0].aggregates[0]
    assert not agg.id_declared
    assert agg.id_field == n.Field(
        "order_line_id", n.TypeRef("uuid", Location("f.storm", 1, 13)), Location("f.storm", 1, 13)
    )


def test_commands(parse: Parse) -> None:
    place, pay = parse(BOARD).contexts[0].aggregates[0].commands
    assert place.loc == where("command PlaceOrder")
    assert place.actors == (
        n.Ref("Customer", where("Customer, Clerk")),
        n.Ref("Clerk", where("Clerk creates")),
    )
    assert place.creates and place.description == "Order drinks"
    assert [f.name for f in place.fields] == ["customer", "drinks"]
    (req,) = place.requires
    assert req.message == "no drinks" and req.loc == where("require len")
    assert req.condition == n.Binary(
        ">",
        n.Call(
            "len", (n.Name(("drinks",), where("drinks) > 0 else")),), where("len(drinks) > 0 e")
        ),
        n.Literal(0, "int", where("0 else")),
        where("len(drinks) > 0 e"),
    )
    first, second = place.emits
    assert first.event == n.Ref("OrderPlaced", where("OrderPlaced {"))
    assert first.loc == where("emit OrderPlaced")
    assert first.assignments == (
        n.Assignment("total", "=", n.Literal(0, "int", where("0 }", "emit")), where("total = 0")),
    )
    assert isinstance(first.condition, n.Binary)
    assert first.condition.loc == where("len(drinks) > 0\n")
    assert second == n.Emit(n.Ref("OrderNoted", where("OrderNoted")), where("emit OrderNoted"))
    assert place.hotspots == (n.Hotspot("Limits?", where('hotspot "Limits')),)
    assert pay.actors == () and not pay.creates and pay.description is None


def test_events(parse: Parse) -> None:
    placed, noted, paid = parse(BOARD).contexts[0].aggregates[0].events
    assert placed.published and placed.version == 3 and placed.description == "Placed"
    assert placed.loc == where("published event")
    assert [f.name for f in placed.fields] == ["customer", "drinks", "total"]
    assert [(a.target, a.op) for a in placed.apply] == [
        ("total", "+="),
        ("count", "-="),
        ("status", "="),
    ]
    assert placed.apply[2].value == n.Name(("Placed",), where("Placed }"))
    assert placed.apply[2].loc == where("status = Placed")
    assert placed.hotspots == (n.Hotspot("Rename?", where('hotspot "Rename')),)
    assert noted == n.Event("OrderNoted", (), where("event OrderNoted"))
    assert not paid.published and paid.version == 1


def test_external_policy_and_view(parse: Parse) -> None:
    ordering = parse(BOARD).contexts[0]
    gateway = ordering.externals[0]
    assert gateway.description == "Cards"
    assert [c.name for c in gateway.commands] == ["Charge"]
    assert [f.name for f in gateway.commands[0].fields] == ["order_no", "amount"]
    assert [e.name for e in gateway.events] == ["Charged"]

    policy = ordering.policies[0]
    assert policy.when == n.Ref("OrderPlaced", where("OrderPlaced if"))
    assert policy.condition == n.Binary(
        ">",
        n.Name(("total",), where("total > 0")),
        n.Literal(0, "int", where("0\n", "total > ")),
        where("total > 0"),
    )
    charge, pay = policy.thens
    assert charge.command == n.Ref("Gateway.Charge", where("Gateway.Charge"))
    assert charge.loc == where("then Gateway")
    assert charge.assignments[0].target == "amount"
    assert pay.command.parts == ("Pay",)
    assert [h.text for h in policy.hotspots] == ["Retry?", "Twice?"]

    view = ordering.views[0]
    key_at = where("order_no: str", "view History")
    assert view.key == n.Field("order_no", n.TypeRef("str", where("str", "key order_no")), key_at)
    assert [f.name for f in view.fields] == ["total"]
    placed, paid, charged = view.handlers
    assert placed == n.On(n.Ref("OrderPlaced", where("OrderPlaced\n", "view")), where("on Order"))
    assert paid.by == n.Name(("order_no",), where("order_no {"))
    assert paid.assignments[0].op == "+="
    assert charged.delete and charged.event.name == "Gateway.Charged"
    assert view.hotspots == (n.Hotspot("Paging?", where('hotspot "Paging')),)


def test_context_map(parse: Parse) -> None:
    m = parse(BOARD)
    (cmap,) = m.maps
    assert cmap.loc == where("map {")
    up, partners, plain = cmap.relations
    assert (up.left.name, up.kind, up.right.name) == ("Ordering", "->", "Bar")
    assert up.loc == where("Ordering [OHS")
    assert up.left_patterns == (n.Ref("OHS", where("OHS")), n.Ref("PL", where("PL]")))
    assert up.right_patterns == (n.Ref("CF", where("CF")),)
    assert up.right.loc == where("Bar\n", "[CF]")
    assert partners.kind == "<->" and [p.name for p in partners.symmetric] == ["partnership"]
    assert plain.left_patterns == plain.right_patterns == plain.symmetric == ()
    assert m.relations == (up, partners, plain)


def test_model_name_comes_from_the_file_without_a_header(parse: Parse) -> None:
    m = parse("context A {}", name="coffee_shop.storm")
    assert (m.name, m.name_declared, m.loc) == (
        "CoffeeShop",
        False,
        Location("coffee_shop.storm", 1, 1),
    )


def test_an_empty_file_is_an_empty_model(parse: Parse) -> None:
    m = parse("", name="empty-board.storm")
    assert m.name == "EmptyBoard" and m.contexts == () and m.maps == ()
    assert parse("# just a comment\n\n", name="c.storm").name == "C"


def test_comments_keywords_and_names(parse: Parse) -> None:
    m = parse(
        '# a comment\ncontext A { # trailing\n aggregate B { state { notes: str = "#not a comment" '
        "pii: bool was: int } } }"
    )
    fields = m.contexts[0].aggregates[0].state
    assert [f.name for f in fields] == ["notes", "pii", "was"]
    assert fields[0].default == n.Literal("#not a comment", "str", Location("model.storm", 3, 37))
    assert not fields[0].pii


def test_unknown_escapes_are_kept_as_written(parse: Parse) -> None:
    m = parse('context A "tab\\tand quote\\"" {}')
    assert m.contexts[0].description == 'tab\\tand quote"'
