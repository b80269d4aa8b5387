"""Durations end to end, over real HTTP: a `stormgen run` server of
tests/generate/durations.storm on a SQLite file and on PostgreSQL.

A duration is sent in a command body as an ISO 8601 duration and comes back in the
events, the state and the view in its canonical form; a bad one is a 422 naming the
field (never a 500); a view ordered by a duration column lists and pages in that
order, and filters on it whatever the spelling of the same length; a datetime moved
past the calendar's end is a 409 and writes nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from e2e_support import PG_ENV, REPO, STORMGEN, Server, wait_for

MODEL = REPO / "tests" / "generate" / "durations.storm"
TOKENS = "k1=Clerk,o1=operator"
CLERK = {"Authorization": "Bearer k1"}
OPERATOR = {"Authorization": "Bearer o1"}


class DurationsServer(Server):
    """The server of tests/generate/durations.storm."""

    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store, *self.args]
        return [*STORMGEN, "run", str(MODEL), *options]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DurationsServer]:
    """One server per store for the module: a SQLite file, a fresh PostgreSQL schema."""
    workdir = tmp_path_factory.mktemp("durations")
    base = os.environ.get(PG_ENV)
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        store = f"sqlite:///{workdir / 'events.db'}"
    elif not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against")
    else:
        store = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    running = DurationsServer(workdir, store, TOKENS)
    running.start()
    yield running
    running.stop()
    if request.param == "postgres" and base:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def plan(c: httpx.Client, body: dict[str, object]) -> httpx.Response:
    return c.post(
        "/desk/shift/plan", json={"starts": "2026-03-01T08:00:00Z", **body}, headers=CLERK
    )


def test_durations_over_http(server: DurationsServer) -> None:
    with server.client() as c:
        nine = plan(c, {"length": "PT9H"})
        assert nine.status_code == 201, nine.text
        data = nine.json()["events"][0]["data"]
        assert data["length"] == "PT9H"
        assert data["ends"] == "2026-03-01T17:00:00Z"  # datetime + duration
        assert data["due"] == "2026-03-02"  # date + days(1)

        # the default `hours(8)`, and another spelling of a length (canonical on the way out)
        eight = plan(c, {})
        assert eight.json()["events"][0]["data"]["length"] == "PT8H"
        ten = plan(c, {"length": "PT600M"})
        assert ten.json()["events"][0]["data"]["length"] == "PT10H"
        ten_id = ten.json()["id"]

        extended = c.post(f"/desk/shift/{ten_id}/extend", json={"by": "-PT5M"}, headers=CLERK)
        assert extended.status_code == 200, extended.text
        data = extended.json()["events"][0]["data"]
        assert data["length"] == "PT9H55M"
        assert data["ends"] == "2026-03-01T17:55:00Z"
        assert data["due"] == "2026-02-23"  # 2 March - 1 week + abs(-5 minutes): whole days
        assert data["longest"] is None  # max() of no breaks

        took = c.post(
            f"/desk/shift/{ten_id}/take-break",
            json={"at": "2026-03-01T09:30:00Z", "minutes_taken": 20},
            headers=CLERK,
        )
        assert took.status_code == 200, took.text
        data = took.json()["events"][0]["data"]
        assert data["breaks"] == [{"starts": "2026-03-01T09:30:00Z", "length": "PT20M"}]
        assert data["worked"] == "PT1H30M"  # datetime - datetime - sum(no breaks)
        too_long = c.post(
            f"/desk/shift/{ten_id}/take-break",
            json={"at": "2026-03-01T12:00:00Z", "minutes_taken": 41},
            headers=CLERK,
        )
        assert too_long.status_code == 409
        assert too_long.json()["message"] == "at most an hour of breaks"

        state = c.get(f"/desk/shift/{ten_id}", headers=CLERK).json()["state"]
        assert state["length"] == "PT9H55M"
        assert state["grace"] == "PT5M"
        assert state["breaks"] == [{"starts": "2026-03-01T09:30:00Z", "length": "PT20M"}]

        # the view: ordered by length, longest first; paged after a row; filtered
        rows = wait_for(lambda: _rows_when(c, 3, "PT1H30M"))
        assert [r["length"] for r in rows] == ["PT9H55M", "PT9H", "PT8H"]
        assert [r["worked"] for r in rows] == ["PT1H30M", None, None]
        first = c.get("/desk/views/shifts?limit=1", headers=CLERK).json()
        assert [r["length"] for r in first["rows"]] == ["PT9H55M"]
        after = first["next_after"]
        rest = c.get(f"/desk/views/shifts?after={after}", headers=CLERK).json()["rows"]
        assert [r["length"] for r in rest] == ["PT9H", "PT8H"]
        for spelling in ("PT540M", "PT9H", "PT32400S"):
            found = c.get(f"/desk/views/shifts?length={spelling}", headers=CLERK)
            assert found.status_code == 200, found.text
            assert [r["length"] for r in found.json()["rows"]] == ["PT9H"]
        bad = c.get("/desk/views/shifts?length=9h", headers=CLERK)
        assert bad.status_code == 422
        assert bad.json()["field"] == "length"


def _rows_when(c: httpx.Client, count: int, worked: str) -> list[dict[str, object]] | None:
    """The view's rows once it has ``count`` and the first one has ``worked``."""
    rows: list[dict[str, object]] = c.get("/desk/views/shifts", headers=CLERK).json()["rows"]
    return rows if len(rows) == count and rows[0]["worked"] == worked else None


@pytest.mark.parametrize(
    "length",
    ["9 hours", 32400, "P1Y", "P2W", "pt9h", "PT1.5H", "P1000000D", None, ["PT1H"]],
)
def test_a_bad_duration_is_a_422_naming_the_field(server: DurationsServer, length: object) -> None:
    with server.client() as c:
        before = _log_size(c)
        response = plan(c, {"length": length})
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["field"] == "length"
        if isinstance(length, str):
            assert "ISO 8601 duration" in body["message"], body
        assert _log_size(c) == before


def test_a_datetime_past_the_calendar_is_a_409(server: DurationsServer) -> None:
    with server.client() as c:
        before = _log_size(c)
        response = c.post(
            "/desk/shift/plan",
            json={"starts": "9999-12-31T20:00:00Z", "length": "PT9H"},
            headers=CLERK,
        )
        assert response.status_code == 409, response.text
        assert response.json()["message"] == "Plan cannot be computed: a number out of range"
        assert _log_size(c) == before


def _log_size(c: httpx.Client) -> int:
    events = c.get("/events?limit=1000", headers=OPERATOR).json()["events"]
    return len(events)


def test_the_openapi_document_says_duration(server: DurationsServer) -> None:
    with server.client() as c:
        schemas = c.get("/openapi.json").json()["components"]["schemas"]
    length = schemas["DeskPlan"]["properties"]["length"]
    assert length["type"] == "string"
    assert length["format"] == "duration"
    assert length["default"] == "PT8H"
    assert "pattern" in length
