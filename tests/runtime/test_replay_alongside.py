"""A replay in one process while another runs the same view: no row lost, none doubled.

The interleaving the real-process test (tests/e2e/test_e2e_replay_live.py) hits by
chance, made exact: the service read its checkpoint before the replay set it back,
and writes the progress it kept in memory after the replay's first batch.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coffee_domain import OpenTicket, Order, OrderCount, PlaceOrder, Ticket, latte
from runtime_support import FAST_RETRY, Stores, make_stores

ORDERS = 12


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Stores two applications open at once (two processes' worth of connections)."""
    yield from make_stores(request.param, tmp_path)


def test_progress_written_after_a_replay_began_leaves_the_rebuild_alone(
    shared: Stores,
) -> None:
    url = shared.url()
    # small batches: the replay takes several; progress written only when forced
    retry = dataclasses.replace(
        FAST_RETRY, batch_size=5, checkpoint_interval=3600, checkpoint_lag=10**6
    )
    definitions: dict[str, Any] = {
        "aggregates": [Order(), Ticket()],
        "views": [OrderCount()],
        "retry": retry,
    }
    service = shared.app(url, **definitions)
    for n in range(ORDERS):
        service.handle(PlaceOrder(customer=f"c{n}", drinks=[latte()], total=Decimal("3.50")))
    service.run_consumers()
    for _ in range(3):
        service.handle(OpenTicket(ticket_id=uuid.uuid4(), drinks=1))
    # nothing of its types: the service moves past the tickets in memory only
    assert service.consumers.run_once(OrderCount.name) == 0
    assert service.store.get_checkpoint(OrderCount.name) == ORDERS
    consumer = service.consumers._consumers[OrderCount.name]
    read_before = consumer.base  # what the service's pass read before the replay began

    replayer = shared.app(url, **definitions)
    moments: list[int] = []

    def meanwhile(position: int, end: int) -> None:
        if not moments:
            # the replay is part way: the service writes its progress, as a pass does
            service.consumers._flush(consumer, read_before, force=True)
        moments.append(position)

    replayer.replay(OrderCount, progress=meanwhile)
    assert moments[0] < ORDERS, "the replay was meant to take several batches"
    assert replayer.view_rows(OrderCount) == [{"key": "all", "orders": ORDERS}]

    # the service goes on from the stored checkpoint, where the replay left it
    service.handle(PlaceOrder(customer="late", drinks=[latte()], total=Decimal("3.50")))
    service.run_consumers()
    assert service.view_rows(OrderCount) == [{"key": "all", "orders": ORDERS + 1}]
    replayer.replay(OrderCount)
    assert replayer.view_rows(OrderCount) == [{"key": "all", "orders": ORDERS + 1}]
