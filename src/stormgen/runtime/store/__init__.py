"""Event stores: the log and its side tables on memory, SQLite or PostgreSQL."""

from stormgen.runtime.store.base import (
    ANY,
    NO_STREAM,
    SCHEMA_VERSION,
    AppendResult,
    EventStore,
    ParkedFailure,
    Snapshot,
    UnitOfWork,
    ViewRow,
    column_name,
    view_table_name,
)
from stormgen.runtime.store.url import DEFAULT_STORE_URL, fork, open_store

__all__ = [
    "ANY",
    "DEFAULT_STORE_URL",
    "NO_STREAM",
    "SCHEMA_VERSION",
    "AppendResult",
    "EventStore",
    "ParkedFailure",
    "Snapshot",
    "UnitOfWork",
    "ViewRow",
    "column_name",
    "fork",
    "open_store",
    "view_table_name",
]
