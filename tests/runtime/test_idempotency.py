"""Idempotency keys in namespaces: a client's key is its caller's and its type's, the
policies' command ids internal; a client's key reused for another request is refused.
On every backend; the upgrade of a store written before the namespaces on SQLite and
PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from coffee_domain import (
    CardCharged,
    MarkPaid,
    Order,
    OrderStatus,
    PlaceOrder,
    definitions,
    latte,
)
from runtime_support import Stores, make_stores, pg_base_url

from stormgen.runtime import ClientKey, KeyReused, command_id, info, to_data
from stormgen.runtime.idempotency import ANONYMOUS, caller_of, fingerprint

PLACE = "Ordering.PlaceOrder"


def order(customer: str = "Ada", total: str = "3.50") -> PlaceOrder:
    return PlaceOrder(customer=customer, drinks=[latte(total)], total=Decimal(total))


def client_key(caller: str, key: str, command: PlaceOrder | MarkPaid) -> ClientKey:
    """The key a client of ``caller`` sends with ``command``, as the API scopes it."""
    return ClientKey.of(caller, info(command).name, key, to_data(command))


@pytest.fixture(params=["sqlite", "postgres"])
def db_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """The SQL backends, whose stores outlive a process (and so get upgraded)."""
    yield from make_stores(request.param, tmp_path)


def test_a_clients_key_belongs_to_its_caller_and_its_type(stores: Stores) -> None:
    app = stores.app(**definitions())
    ada = order()
    first = app.handle(ada, idempotency_key=client_key("ada", "k", ada))
    again = app.handle(ada, idempotency_key=client_key("ada", "k", ada))
    assert again.duplicate and again.id == first.id
    # the same key string: another caller's, the service's own, another type's
    bobs = order("Bob")
    bob = app.handle(bobs, idempotency_key=client_key("bob", "k", bobs))
    internal = app.handle(order(), idempotency_key="k")
    pay = MarkPaid(order_id=first.id, amount=Decimal("3.50"))
    paid = app.handle(pay, idempotency_key=client_key("ada", "k", pay))
    assert not (bob.duplicate or internal.duplicate or paid.duplicate)
    assert len({first.id, bob.id, internal.id}) == 3
    assert app.store.last_position() == 4
    stored = app.store.remembered(f"client/ada/{PLACE}/k")
    assert stored is not None and stored["first_position"] == 1
    assert app.store.remembered("internal/k") is not None
    assert app.store.remembered("k") is None
    # the events say which key and which request
    metadata = app.history(Order, first.id)[0].metadata
    assert metadata["idempotency_key"] == f"client/ada/{PLACE}/k"
    assert metadata["idempotency_fingerprint"] == client_key("ada", "k", ada).fingerprint
    assert "idempotency_fingerprint" not in app.history(Order, internal.id)[0].metadata


def test_a_clients_key_used_for_another_request_is_refused(stores: Stores) -> None:
    app = stores.app(**definitions())
    first = app.handle(order(), idempotency_key=client_key("ada", "k", order()))
    other = order(total="9.00")
    with pytest.raises(KeyReused, match="different request"):
        app.handle(other, idempotency_key=client_key("ada", "k", other))
    # a command without pii (the store's own atomic append)
    pay = MarkPaid(order_id=first.id, amount=Decimal("3.50"))
    app.handle(pay, idempotency_key=client_key("ada", "p", pay))
    wrong = MarkPaid(order_id=first.id, amount=Decimal("1.00"))
    with pytest.raises(KeyReused):
        app.handle(wrong, idempotency_key=client_key("ada", "p", wrong))
    # an external system's events: the append itself finds the key and its request
    charged = CardCharged(order_id=first.id, amount=Decimal("3.50"))
    key = ClientKey.of("gw", "Ordering.CardCharged", "c", {"amount": "3.50"})
    app.record_external([charged], idempotency_key=key)
    assert app.record_external([charged], idempotency_key=key)[0].position == 3
    refused = ClientKey.of("gw", "Ordering.CardCharged", "c", {"amount": "1.00"})
    with pytest.raises(KeyReused):
        app.record_external([charged], idempotency_key=refused)
    assert app.store.last_position() == 3


def test_a_group_answers_a_reused_key_for_itself(sqlite_stores: Stores) -> None:
    """Two requests with one key in one group commit: the second alone is refused."""
    app = sqlite_stores.app(**definitions())
    one, two = order(), order(total="9.00")
    outcomes = app.handle_together(
        [
            lambda: app.handle(one, idempotency_key=client_key("ada", "k", one)),
            lambda: app.handle(two, idempotency_key=client_key("ada", "k", two)),
        ]
    )
    assert not isinstance(outcomes[0], Exception)
    assert isinstance(outcomes[1], KeyReused)
    assert app.store.last_position() == 1


def test_policies_command_ids_are_internal(stores: Stores) -> None:
    app = stores.app(**definitions())
    placed = app.handle(order())
    cid = str(command_id("Ordering.ChargeOnOrder", placed.events[0].id, 0))
    # a client sending that id as its key writes only in its own namespace
    junk = order("Bob", "0.10")
    app.handle(junk, idempotency_key=client_key("bob", cid, junk))
    app.run_consumers()
    assert app.was_handled(cid)
    assert app.store.remembered(f"internal/{cid}") is not None
    assert app.state(Order, placed.id).state.status is OrderStatus.Paid


def test_the_caller_is_a_hash_of_the_token() -> None:
    assert caller_of("c1") == caller_of("c1") != caller_of("c2")
    assert "c1" not in caller_of("c1") and len(caller_of("c1")) == 32
    assert caller_of("anonymous") != ANONYMOUS
    # key order does not change a body's fingerprint; a value or the type does
    assert fingerprint("T", {"a": 1, "b": [1]}) == fingerprint("T", {"b": [1], "a": 1})
    others = {fingerprint("T", {"a": 2}), fingerprint("U", {"a": 1})}
    assert fingerprint("T", {"a": 1}) not in others


# -- stores written before the namespaces (schema version 2) -------------------------
def _as_version_2_sqlite(url: str) -> None:
    """Turn a store back into what stormgen wrote as schema version 2: every key (and
    every event's key) in one namespace."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("UPDATE idempotency_keys SET key = substr(key, 10)")
    conn.execute("UPDATE events SET envelope = replace(envelope, '\"internal/', '\"')")
    conn.execute("DELETE FROM checkpoints")
    conn.execute("UPDATE stormgen_meta SET value = '2' WHERE key = 'schema_version'")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()


def _as_version_2_postgres(url: str) -> None:
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_base_url(), autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute("UPDATE idempotency_keys SET key = substr(key, 10)")
        conn.execute(
            "UPDATE events SET envelope = replace(envelope, '\"internal/', '\"'),"
            " metadata = jsonb_set(metadata, '{idempotency_key}',"
            " to_jsonb(substr(metadata ->> 'idempotency_key', 10)))"
            " WHERE metadata ? 'idempotency_key'"
        )
        conn.execute("DELETE FROM checkpoints")
        conn.execute("UPDATE stormgen_meta SET value = '2' WHERE key = 'schema_version'")


def test_an_upgraded_store_and_its_fork_repeat_no_policys_command(db_stores: Stores) -> None:
    """A store written before the namespaces: its policies' keys become internal ones,
    so policies reading the log again (and in a fork) issue nothing twice."""
    app = db_stores.app(**definitions())
    placed = app.handle(order())
    app.run_consumers()
    events = [e.id for e in app.events()]
    assert len(events) == 5  # placed, charge sent, charged, paid, ticket opened
    url = app.store.url
    app.close()
    db_stores.apps.remove(app)
    if db_stores.kind == "sqlite":
        _as_version_2_sqlite(url)
    else:
        _as_version_2_postgres(url)

    upgraded = db_stores.app(url, **definitions())
    cid = str(command_id("Ordering.ChargeOnOrder", placed.events[0].id, 0))
    assert upgraded.was_handled(cid)
    assert upgraded.store.remembered(cid) is None
    upgraded.run_consumers()  # every policy reads the log again from the start
    assert [e.id for e in upgraded.events()] == events
    assert upgraded.state(Order, placed.id).state.status is OrderStatus.Paid
    target = db_stores.url()
    upgraded.fork(target).close()
    fork = db_stores.app(target, **definitions())
    assert fork.was_handled(cid)
    fork.run_consumers()
    assert [e.id for e in fork.events()] == events


def test_a_retry_the_first_delivery_now_refuses_answers_the_first_result(
    stores: Stores,
) -> None:
    # the append looks a key up with the stream's head; a retry refused by the state
    # its first delivery left looks it up before answering
    app = stores.app(**definitions())
    placed = app.handle(order())
    pay = MarkPaid(order_id=placed.id, amount=Decimal("3.50"))
    first = app.handle(pay, idempotency_key=client_key("ada", "p", pay))
    # the order is paid now: decided again, MarkPaid would be rejected
    again = app.handle(pay, idempotency_key=client_key("ada", "p", pay))
    assert again.duplicate and again.stream_version == first.stream_version == 2
    # a retry expecting the version its first delivery moved past
    second = app.handle(order("Bob"))
    pay = MarkPaid(order_id=second.id, amount=Decimal("3.50"))
    paid = app.handle(pay, expected_version=1, idempotency_key="pay-bob")
    replay = app.handle(pay, expected_version=1, idempotency_key="pay-bob")
    assert replay.duplicate and replay.stream_version == paid.stream_version == 2
    assert app.store.last_position() == 4
