"""Unset state fields, evolution from the recorded envelope, message metadata."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pytest
from runtime_support import Stores

from stormgen.runtime import (
    UNSET,
    Aggregate,
    Command,
    Event,
    RecordedEvent,
    UnsetFieldError,
    from_data,
    info,
    is_unset,
    to_data,
)


@dataclass(frozen=True)
class Register(Command, name="Lib.Register", aggregate="Lib.Book", creates=True, by=("Clerk",)):
    isbn: str


@dataclass(frozen=True)
class Title(Command, name="Lib.Title", aggregate="Lib.Book", by=["Clerk", "Editor"]):
    isbn: str
    title: str


@dataclass(frozen=True)
class Shout(Command, name="Lib.Shout", aggregate="Lib.Book"):
    isbn: str


@dataclass(frozen=True)
class Registered(Event, name="Lib.Registered", aggregate="Lib.Book"):
    isbn: str


@dataclass(frozen=True)
class Titled(Event, name="Lib.Titled", aggregate="Lib.Book"):
    isbn: str
    title: str


@dataclass(frozen=True)
class BookState:
    title: str = UNSET  # no default in the model: unset until an event sets it
    registered_at: datetime | None = None
    last_position: int = 0
    titles: int = 0


class Book(Aggregate[BookState]):
    name = "Lib.Book"
    id_field = "isbn"
    id_type = str
    state_type = BookState
    snapshot_every = 2
    commands = (Register, Title, Shout)
    events = (Registered, Titled)

    def initial_state(self) -> BookState:
        return BookState()

    def decide(self, state: BookState, command: Command) -> list[Event]:
        if isinstance(command, Register):
            return [Registered(command.isbn)]
        if isinstance(command, Title):
            return [Titled(command.isbn, command.title)]
        assert isinstance(command, Shout)
        return [Titled(command.isbn, state.title.upper())]

    def evolve(self, state: BookState, event: Event, recorded: RecordedEvent) -> BookState:
        # `event.recorded_at` and `event.position` are usable in `apply` blocks
        state = replace(state, last_position=recorded.position)
        if isinstance(event, Registered):
            return replace(state, registered_at=recorded.recorded_at)
        assert isinstance(event, Titled)
        return replace(state, title=event.title, titles=state.titles + 1)


def test_unset_fails_loudly_on_use_and_encodes_as_null() -> None:
    state = BookState()
    assert is_unset(state.title) and repr(state.title) == "UNSET"
    for use in (
        lambda: state.title == "x",
        lambda: state.title + "x",
        lambda: len(state.title),
        lambda: bool(state.title),
        lambda: str(state.title),
        lambda: state.title.upper(),
    ):
        with pytest.raises(UnsetFieldError, match="read before any event set it"):
            use()
    assert to_data(state)["title"] is None
    assert is_unset(from_data(BookState, {}).title)
    assert state == BookState()  # identity: comparing whole states still works


def test_reading_an_unset_field_in_a_guard_is_an_error_not_a_rejection(stores: Stores) -> None:
    app = stores.app(aggregates=[Book()])
    app.handle(Register(isbn="978-3"))
    with pytest.raises(UnsetFieldError):
        app.handle(Shout(isbn="978-3"))
    app.handle(Title(isbn="978-3", title="Dune"))
    assert app.handle(Shout(isbn="978-3")).events[0].data["title"] == "DUNE"


def test_evolve_sees_the_recorded_envelope_and_snapshots_skip_unset(stores: Stores) -> None:
    app = stores.app(aggregates=[Book()])
    first = app.handle(Register(isbn="978-1"))
    recorded_at = first.events[0].recorded_at
    second = app.handle(Register(isbn="978-2"))
    state = app.state(Book, "978-1").state
    assert state.registered_at == recorded_at and state.last_position == 1
    assert is_unset(state.title)
    app.handle(Title(isbn="978-1", title="Dune"))  # version 2: snapshot
    snap = app.store.get_snapshot("Lib.Book/978-1")
    assert snap is not None and snap.state["title"] == "Dune"
    loaded = app.state(Book, "978-1")
    assert loaded.state.title == "Dune" and loaded.state.last_position == 3
    assert second.stream == "Lib.Book/978-2" and second.stream_id == "978-2"


def test_a_snapshot_leaves_out_unset_fields() -> None:
    data: dict[str, Any] = Book().state_data(BookState(titles=2))
    assert "title" not in data and data["titles"] == 2
    assert is_unset(from_data(BookState, data).title)


def test_command_metadata_names_its_actors() -> None:
    assert info(Register).by == ("Clerk",)
    assert info(Title).by == ("Clerk", "Editor")
    assert info(Shout).by == ()  # internal: not on the API
    assert info(Register).creates and info(Register).context == "Lib"
    assert info(Title(isbn="1", title="t")).name == "Lib.Title"
    with pytest.raises(TypeError, match="not a message class"):
        info(BookState)  # type: ignore[arg-type]
