"""Backends for the store contract suite, and the samples its modules share: the
helpers tests use by name.

The fixtures built on them (``backend``, ``db_backend``, ``store``) are in
``conftest.py`` beside this module.
"""

from __future__ import annotations

from pathlib import Path

from runtime_support import StoreURLs, pg_base_url

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.store import EventStore, open_store

#: every backend, in the order the parametrized fixtures run them
BACKENDS = ["memory", "sqlite", "postgres"]
#: the backends that persist to a database shared between processes
DB_BACKENDS = ["sqlite", "postgres"]


class Backend(StoreURLs):
    """Makes stores of one backend for one test, and cleans up after it."""

    prefix = "test"

    def __init__(self, kind: str, tmp_path: Path) -> None:
        super().__init__(kind, tmp_path)
        self.stores: list[EventStore] = []

    def new_url(self) -> str:
        """Return the URL of a new, empty store of this backend."""
        return self.url()

    def open(self, url: str | None = None) -> EventStore:
        """Open (and remember to close) a store; a new empty one without a URL."""
        store = open_store(url or self.new_url())
        self.stores.append(store)
        return store

    def cleanup(self) -> None:
        for store in self.stores:
            store.close()
        self.drop_schemas()


def make_backend(kind: str, tmp_path: Path) -> Backend:
    """A backend helper outside the parametrized fixtures (for cross-backend tests)."""
    if kind == "postgres":
        pg_base_url()
    return Backend(kind, tmp_path)


# -- samples the contract modules share ----------------------------------------------------
def ev(n: int, type_: str = "Shop.Thing", **meta: str) -> NewEvent:
    """An event numbered ``n`` (with a decimal-as-string field, and metadata)."""
    return NewEvent(type=type_, data={"n": n, "total": "7.50"}, metadata=dict(meta))


#: a view with declared columns of several types
VIEW = "Ordering.OrderSummary"
COLUMNS = {"customer": "text", "paid": "boolean", "total": "numeric", "drinks": "integer"}


def order(customer: str, paid: bool, total: str, drinks: int) -> dict[str, object]:
    """A row of `VIEW`."""
    return {"customer": customer, "paid": paid, "total": total, "drinks": drinks, "note": None}
