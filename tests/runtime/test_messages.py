"""Message classes: their metadata survives `slots=True`, and slotted ones have no `__dict__`."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, dataclass, field

import pytest
from coffee_domain import OrderCancelled

from stormgen.runtime import Command, Event
from stormgen.runtime.codec import decoder, to_data
from stormgen.runtime.messages import info


@dataclass(frozen=True, slots=True, kw_only=True)
class Moved(Event, name="Yard.Moved", aggregate="Yard.Crate", version=2, pii=("by",)):
    crate_id: str
    by: str
    from_: str = field(default="", metadata={"name": "from"})


@dataclass(frozen=True, slots=True)
class Move(Command, name="Yard.Move", aggregate="Yard.Crate", by=("Porter",)):
    crate_id: str


def test_a_slotted_message_has_no_instance_dict() -> None:
    for message in (Moved(crate_id="c1", by="Ada"), Move("c1")):
        assert not hasattr(message, "__dict__")
        with pytest.raises(FrozenInstanceError):
            message.crate_id = "c2"  # type: ignore[misc]


def test_slotted_classes_keep_their_metadata() -> None:
    moved = info(Moved)
    assert (moved.kind, moved.name, moved.version) == ("event", "Yard.Moved", 2)
    assert moved.aggregate == "Yard.Crate" and moved.pii == frozenset({"by"})
    assert info(Move).by == ("Porter",) and info(Move(crate_id="c1")).kind == "command"
    assert info(OrderCancelled).renamed == {"reason": ("why",)}


def test_an_intermediate_base_carries_no_metadata() -> None:
    class Audited(Event):
        __slots__ = ()

    @dataclass(frozen=True, slots=True)
    class Checked(Audited, name="Yard.Checked"):
        crate_id: str

    with pytest.raises(TypeError, match="not a message class"):
        info(Audited)
    assert info(Checked).name == "Yard.Checked"
    assert not hasattr(Checked("c1"), "__dict__")


def test_slotted_messages_encode_decode_copy_and_pickle() -> None:
    moved = Moved(crate_id="c1", by="Ada", from_="dock")
    assert to_data(moved) == {"crate_id": "c1", "by": "Ada", "from": "dock"}
    decoded = decoder(Moved)({"crate_id": "c1", "by": "Ada"})
    assert decoded == Moved(crate_id="c1", by="Ada") and to_data(decoded)["from"] == ""
    assert copy.deepcopy(moved) == moved and pickle.loads(pickle.dumps(moved)) == moved
    assert hash(moved) == hash(Moved(crate_id="c1", by="Ada", from_="dock"))
