"""The board's layout and page, without a browser (tests/browser drives it in Chromium)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stormgen import LoadedModel
from stormgen.cli import app
from stormgen.render.board import Note, build_board, render_board, render_board_page

COFFEE_SHOP = Path(__file__).resolve().parents[2] / "examples" / "coffee_shop.storm"
runner = CliRunner()


def model_counts(loaded: LoadedModel) -> dict[str, int]:
    """Every sticky of the model counted from the dataclasses, not from the graph."""
    m = loaded.model
    kinds = ("actor", "aggregate", "command", "event", "policy", "process", "view")
    counts = dict.fromkeys((*kinds, "external", "hotspot"), 0)
    counts["actor"] = len(m.actors)
    for c in m.contexts:
        counts["actor"] += len(c.actors)
        counts["aggregate"] += len(c.aggregates)
        counts["external"] += len(c.externals)
        counts["policy"] += len(c.policies)
        counts["view"] += len(c.views)
        counts["process"] += len(c.processes)
        counts["hotspot"] += len(c.hotspots)
        for owner in (*c.aggregates, *c.externals):
            counts["command"] += len(owner.commands)
            counts["event"] += len(owner.events)
        for a in c.aggregates:
            counts["hotspot"] += len(a.hotspots)
            for cmd in a.commands:
                counts["hotspot"] += len(cmd.hotspots)
            for e in a.events:
                counts["hotspot"] += len(e.hotspots)
        for p in c.policies:
            counts["hotspot"] += len(p.hotspots)
        for v in c.views:
            counts["hotspot"] += len(v.hotspots)
    return counts


def by_name(notes: list[Note]) -> dict[str, Note]:
    return {n.ref.split(":", 1)[1]: n for n in notes if not n.ghost and not n.copy}


def test_every_sticky_is_on_the_board_once(coffee: LoadedModel) -> None:
    board = build_board(coffee)
    originals = [n for n in board.notes if not n.ghost and not n.copy]
    refs = [n.ref for n in originals]
    assert len(refs) == len(set(refs))
    expected = model_counts(coffee)
    for kind, count in expected.items():
        assert len({n.ref for n in board.notes if n.kind == kind}) == count, kind
    assert board.counts == expected
    assert [lane.name for lane in board.lanes] == ["Ordering", "Bar", "Display"]


def test_causal_order_left_to_right(coffee: LoadedModel) -> None:
    notes = by_name(build_board(coffee).notes)
    chain = [
        "Ordering.PlaceOrder",
        "Ordering.OrderPlaced",
        "Ordering.ChargeOnOrder",
        "Ordering.PaymentGateway.ChargeCard",
        "Ordering.PaymentGateway.CardCharged",
        "Ordering.PaidWhenCharged",
        "Ordering.MarkPaid",
        "Ordering.OrderPaid",
    ]
    xs = [notes[name].x for name in chain]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    # Read models come after every event that feeds them.
    assert notes["Ordering.OrderHistory"].x > notes["Ordering.OrderCancelled"].x
    assert notes["Bar.OpenTicket"].x < notes["Bar.TicketOpened"].x
    # Layout hints: an instance is created first, and a command guarded by
    # `status == Brewing` comes after the event whose apply sets `status = Brewing`.
    bar = [
        "Bar.OpenTicket",
        "Bar.TicketOpened",
        "Bar.StartBrewing",
        "Bar.BrewingStarted",
        "Bar.FinishBrewing",
        "Bar.DrinksReady",
        "Bar.HandOver",
        "Bar.TicketHandedOver",
    ]
    xs = [notes[name].x for name in bar]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    # The hotspot sits right under the command it questions.
    cancel = notes["Ordering.Cancel"]
    hotspot = next(n for n in notes.values() if n.name.startswith("Can a paid order"))
    assert hotspot.x == cancel.x and hotspot.y > cancel.y


def test_notes_never_overlap(coffee: LoadedModel) -> None:
    notes = build_board(coffee).notes
    for i, a in enumerate(notes):
        for b in notes[i + 1 :]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert apart, (a.ref, b.ref)


def test_chains_are_precomputed(coffee: LoadedModel) -> None:
    board = build_board(coffee)
    data = json.loads(board.data_json)
    chain = data["chains"][data["eventChain"]["event:Ordering.OrderPaid"]]
    lit = {board.notes[i].ref for i in chain}
    assert {
        "actor:Customer",
        "command:Ordering.PlaceOrder",
        "aggregate:Ordering.Order",
        "command:Ordering.PaymentGateway.ChargeCard",
        "event:Ordering.PaymentGateway.CardCharged",
        "policy:Bar.QueuePaidOrder",
        "event:Bar.TicketOpened",
        "view:Display.Pickup",
    } <= lit
    assert (
        not {
            "event:Ordering.PaymentGateway.CardDeclined",
            "command:Ordering.Cancel",
            "command:Bar.StartBrewing",
            "actor:Barista",
        }
        & lit
    )


def test_model_text_is_escaped(load_text: Callable[[str], LoadedModel]) -> None:
    loaded = load_text(
        'model Evil "<img src=x onerror=alert(1)>"\n'
        'context C "</script><script>alert(2)</script>" {\n'
        '  aggregate A { command Make creates { emit Made } event Made "a & b" {} }\n'
        '  hotspot "<b>bold?</b>"\n'
        "}\n"
    )
    html = render_board(loaded)
    assert "<img src=x" not in html
    assert "<script>alert" not in html and "</script><script>" not in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html
    blob = re.search(r'<script id="board-data" type="application/json">(.*?)</script>', html, re.S)
    assert blob is not None
    assert json.loads(blob.group(1))["details"]["event:C.Made"]["description"] == "a & b"


def test_board_command_writes_one_file(tmp_path: Path) -> None:
    out = tmp_path / "board.html"
    result = runner.invoke(app, ["board", str(COFFEE_SHOP), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(link|script)[^>]+(href|src)=", html)  # nothing loaded from outside
    assert f"wrote {out} (" in result.output


def test_board_and_graph_draw_a_model_with_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.storm"
    bad.write_text(
        "context Shop {\n  aggregate Cart {\n    command Open creates { emit Opend }\n"
        "    event Opened {}\n  }\n}\n",
        encoding="utf-8",
    )
    out = tmp_path / "bad.html"
    result = runner.invoke(app, ["board", str(bad), "-o", str(out)])
    assert result.exit_code == 0
    assert f"warning: {bad} has 1 error (see 'stormgen validate')" in result.output
    html = out.read_text()
    assert 'data-id="command:Shop.Open"' in html and 'data-id="event:Shop.Opened"' in html
    result = runner.invoke(app, ["graph", str(bad), "--flow"])
    assert result.exit_code == 0
    assert '["Open"]' in result.stdout and "-->" not in result.stdout  # no arrow to a typo


def test_board_default_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["board", str(COFFEE_SHOP)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "coffee_shop-board.html").is_file()


LOOP = """
actor Clerk
context Loop {
  enum State { Idle, Busy }
  aggregate Job {
    state { state: State = Idle }
    command Start by Clerk creates { emit Started }
    command Tick { emit Ticked }
    command Stop by Clerk { require state == Busy else "not busy" emit Stopped }
    event Started { apply { state = Busy } }
    event Ticked {}
    event Stopped {}
  }
  policy Again { when Ticked then Tick }
  policy First { when Started then Tick }
  view Jobs { key job_id: uuid  on Ticked }
}
"""


def test_a_policy_loop_is_laid_out(load_text: Callable[[str], LoadedModel]) -> None:
    loaded = load_text(LOOP)
    board = build_board(loaded)
    notes = by_name(board.notes)
    # Ticked -> Again -> Tick -> Ticked is a cycle; it is cut where it closes.
    assert notes["Loop.Start"].x < notes["Loop.Started"].x < notes["Loop.First"].x
    assert notes["Loop.First"].x < notes["Loop.Tick"].x < notes["Loop.Ticked"].x
    assert notes["Loop.Ticked"].x < notes["Loop.Again"].x
    assert notes["Loop.Ticked"].x < notes["Loop.Jobs"].x
    # The guard `state == Busy` puts Stop after Started, which sets it.
    assert notes["Loop.Stop"].x > notes["Loop.Started"].x
    data = json.loads(board.data_json)
    chain = {board.notes[i].ref for i in data["chains"][data["eventChain"]["event:Loop.Ticked"]]}
    assert {"policy:Loop.Again", "command:Loop.Tick", "command:Loop.Start"} <= chain
    assert "command:Loop.Stop" not in chain


CARGO = Path(__file__).resolve().parents[2] / "tests" / "browser" / "cargo.storm"


def test_an_aggregate_row_is_a_timeline() -> None:
    from stormgen.lang import parse_model
    from stormgen.render.targets import with_graph

    board = build_board(with_graph(parse_model(CARGO)))
    notes = by_name(board.notes)
    cargo = [
        "Booking.BookNewCargo",
        "Booking.AssignCargoToRoute",
        "Booking.ChangeDestinationOfCargo",
        "Booking.RecordHandlingOfCargo",
        "Booking.ClaimCargoAtDestination",
        "Booking.CancelCargoBooking",
    ]
    xs = [notes[c].x for c in cargo]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    step = notes["Booking.CargoBooked"].x - notes["Booking.BookNewCargo"].x
    # Each command's events in the next column, the first level with it.
    record = notes["Booking.RecordHandlingOfCargo"]
    outcomes = [
        "Booking.CargoReceivedInPort",
        "Booking.CargoLoadedOnboard",
        "Booking.CargoArrivedAtDestination",
        "Booking.CargoMisdirected",
    ]
    assert [notes[e].x - record.x for e in outcomes] == [step] * 4
    assert notes[outcomes[0]].y == record.y
    # CargoMisrouted is emitted by two commands: drawn after the later one, copied
    # beside the earlier one.
    route, change = notes["Booking.AssignCargoToRoute"], notes["Booking.ChangeDestinationOfCargo"]
    assert notes["Booking.CargoMisrouted"].x == change.x + step
    copies = [n for n in board.notes if n.ref == "event:Booking.CargoMisrouted" and n.copy]
    assert [n.x for n in copies] == [route.x + step]
    # One arrow per (command, event) pair, though CargoMisdirected has two emits.
    (lane,) = [lane for lane in board.lanes if lane.name == "Booking"]
    pairs = [(k.source, k.target) for k in lane.links if k.kind == "emits"]
    assert len(pairs) == len(set(pairs))
    assert (
        pairs.count(("command:Booking.RecordHandlingOfCargo", "event:Booking.CargoMisdirected"))
        == 1
    )
    # The actor that issues nothing is in the strip of actors, with the others.
    assert board.cast is not None
    assert {n.ref for n in board.cast.notes} == {
        "actor:Shipper",
        "actor:BookingClerk",
        "actor:HandlingOperator",
        "actor:Auditor",
    }


def test_names_are_cut_at_their_humps() -> None:
    from stormgen.render.board_notes import name_parts, wrapped_lines

    assert name_parts("RegisterHandlingEvent") == ["Register", "Handling", "Event"]
    assert name_parts("HTTPServerStarted") == ["HTTP", "Server", "Started"]
    assert name_parts("A20Created") == ["A20", "Created"]
    assert name_parts("order_placed") == ["order_", "placed"]
    assert wrapped_lines(["Register", "Handling", "Event"], 15) == 2
    assert wrapped_lines(["Internationalisation"], 15) == 2
    assert wrapped_lines(["who", "pays", "for", "it"], 8, " ") == 2
    assert wrapped_lines(["who", "pays", "for", "it"], 7, " ") == 3


TWO_AT_ONCE = """
actor Clerk
context Shop {
  aggregate Sale {
    command Sell by Clerk creates { emit Sold }
    published event Sold {}
  }
  external Warehouse {
    command Reserve { sale_id: uuid }
    command Notify { sale_id: uuid }
    event Reserved { sale_id: uuid }
  }
  policy ReserveOnSale { when Sold then Warehouse.Reserve }
  policy NotifyOnSale { when Sold then Warehouse.Notify }
}
"""


def test_two_commands_in_one_column_take_two_bands(
    load_text: Callable[[str], LoadedModel],
) -> None:
    board = build_board(load_text(TWO_AT_ONCE))
    notes = by_name(board.notes)
    reserve, notify = notes["Shop.Warehouse.Reserve"], notes["Shop.Warehouse.Notify"]
    assert reserve.x == notify.x and notify.y > reserve.y
    # The system's answer stands level with the first; the second band starts below it.
    reserved = notes["Shop.Warehouse.Reserved"]
    assert reserved.y == reserve.y and reserved.x > reserve.x
    assert notify.y >= reserved.y + reserved.h


def test_a_process_is_a_lilac_note_with_its_state_and_a_clock_per_timer(
    coffee: LoadedModel,
) -> None:
    board = build_board(coffee)
    (process,) = [n for n in board.notes if n.kind == "process"]
    assert process.name == "PaymentDeadline" and process.sub == "state: total"
    (timer,) = [n for n in board.notes if n.kind == "timer"]
    assert timer.ref == process.ref and timer.name == "PaymentDue"
    assert timer.sub == "timer · after minutes(15)"
    assert timer.x == process.x and timer.y > process.y  # right under it
    details = json.loads(board.data_json)["details"][process.ref]
    sections = dict(details["sections"])
    assert sections["timers"] == ["PaymentDue: after minutes(15)"]
    assert sections["issues"] == ["Ordering.Cancel"]
    assert "on OrderPlaced starts" in sections["handlers"]
    page = render_board_page(board)
    assert ".k-process" in page and ".k-timer" in page
