"""Fields named `from`, `class` and `field` keep those names over HTTP, in events and views."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import REPO, STORMGEN, Server

WIRE_MODEL = REPO / "tests" / "generate" / "wire_names.storm"
TRAVELLER = {"Authorization": "Bearer t1"}
OPERATOR = {"Authorization": "Bearer o1"}


class WireServer(Server):
    """A `stormgen run` process serving the wire-names model."""

    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store, *self.args]
        return [*STORMGEN, "run", str(WIRE_MODEL), *options]


@pytest.fixture(scope="module")
def wire_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir: Path = tmp_path_factory.mktemp("wire")
    running = WireServer(
        workdir, f"sqlite:///{workdir / 'wire.db'}", "t1=Traveller,o1=operator"
    ).start()
    yield running
    running.stop()


def test_bodies_events_state_and_views_use_the_model_names(wire_server: Server) -> None:
    body = {"from": "AMS", "class": "first", "field": "1.5", "legs": [{"from": "CDG"}]}
    with wire_server.client() as c:
        booked = c.post("/travel/trip/book", json=body, headers=TRAVELLER)
        assert booked.status_code == 201, booked.text
        trip_id = booked.json()["id"]
        state = c.get(f"/travel/trip/{trip_id}", headers=TRAVELLER).json()["state"]
        assert state == {
            "from": "AMS",
            "class": "first",
            "field": "1.5",
            "legs": [{"from": "CDG", "class": "economy"}],
        }
        history = c.get(f"/travel/trip/{trip_id}/events", headers=OPERATOR).json()["events"]
        assert history[0]["data"] == {"trip_id": trip_id, **state}
        wire_server.wait_idle(c)
        row = c.get(f"/travel/views/trips/{trip_id}", headers=TRAVELLER).json()
        assert row == {"trip_id": trip_id, "from": "AMS", "class": "first", "field": "1.5"}
        rows = c.get("/travel/views/trips?class=first", headers=TRAVELLER).json()["rows"]
        assert [r["trip_id"] for r in rows] == [trip_id]
        # the OpenAPI document names the model's fields
        schemas = c.get("/openapi.json").json()["components"]["schemas"]
        book = next(s for name, s in schemas.items() if name.endswith("Book"))
        assert {"from", "class", "field"} <= set(book["properties"])
        assert "from_" not in book["properties"]


def test_the_python_name_is_refused_and_errors_name_the_model_field(wire_server: Server) -> None:
    with wire_server.client() as c:
        python_name = c.post(
            "/travel/trip/book", json={"from_": "AMS", "field": "1"}, headers=TRAVELLER
        )
        assert python_name.status_code == 422, python_name.text
        assert python_name.json()["field"] in ("from", "from_")
        missing = c.post("/travel/trip/book", json={"field": "1"}, headers=TRAVELLER)
        assert missing.status_code == 422, missing.text
        assert missing.json()["field"] == "from"
        assert "'from'" in missing.json()["message"]
        wrong = c.post(
            "/travel/trip/book",
            json={"from": "AMS", "field": "1", "legs": [{"from": 3}]},
            headers=TRAVELLER,
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.json()["field"] == "legs[0].from"
        guard = c.post("/travel/trip/book", json={"from": "", "field": "1"}, headers=TRAVELLER)
        assert guard.status_code == 409
        unknown = c.get(f"/travel/trip/{uuid.uuid4()}", headers=TRAVELLER)
        assert unknown.status_code == 404
