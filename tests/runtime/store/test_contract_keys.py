"""Contract of the encryption keys (`EncryptionKeys`) on every backend: put, add (a
first key only), get, delete for good."""

from __future__ import annotations

import pytest

from stormgen.runtime.store import EventStore


def test_encryption_keys_put_get_delete(store: EventStore) -> None:
    key = bytes(range(32))
    store.put_key("Shop.Customer/1", key)
    assert store.get_key("Shop.Customer/1") == key
    assert store.get_key("Shop.Customer/2") is None
    assert store.delete_key("Shop.Customer/1") is True
    assert store.delete_key("Shop.Customer/1") is False
    assert store.get_key("Shop.Customer/1") is None


def test_add_key_stores_a_first_key_only(store: EventStore) -> None:
    first, second = b"1" * 32, b"2" * 32
    with store.transaction() as uow:
        assert uow.add_key("Shop.Customer/1", first) is True
        assert uow.add_key("Shop.Customer/1", second) is False  # in the same transaction
    with store.transaction() as uow:
        assert uow.add_key("Shop.Customer/1", second) is False
    assert store.get_key("Shop.Customer/1") == first
    with pytest.raises(RuntimeError), store.transaction() as uow:
        assert uow.add_key("Shop.Customer/2", second) is True
        raise RuntimeError("rolled back with the transaction")
    assert store.get_key("Shop.Customer/2") is None
