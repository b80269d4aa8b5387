"""A process served for real (`stormgen run MODEL --test-clock`, tests/generate/
processes.storm): the test clock moved over HTTP fires the timers; a server killed
(SIGKILL) right after its clock passed a due time and started again fires that timer
exactly once; with tokens the test clock is refused at start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
from e2e_support import REPO, STORMGEN, Server, clean_env, wait_for

MODEL = REPO / "tests" / "generate" / "processes.storm"


class ProcessServer(Server):
    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store, "--test-clock", *self.args]
        return [*STORMGEN, "run", str(MODEL), *options]


def _place(c: httpx.Client) -> str:
    body = {"total": "5.00", "items": ["latte", "scone"]}
    response = c.post("/shop/order/place", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _instance(c: httpx.Client, key: str) -> dict[str, Any] | None:
    response = c.get(f"/shop/processes/checkout/{key}")
    return response.json() if response.status_code == 200 else None


def _status(c: httpx.Client, key: str) -> str:
    return str(c.get(f"/shop/order/{key}").json()["state"]["status"])


def test_the_test_clock_fires_timers_once_across_a_kill(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    server = ProcessServer(tmp_path, store, None).start()
    try:
        with server.client() as c:
            first = _place(c)
            wait_for(lambda: (_instance(c, first) or {}).get("timers"))
            moved = c.post("/_test/clock", json={"seconds": 15 * 60 + 1})
            assert moved.status_code == 200, moved.text
            wait_for(lambda: _status(c, first) == "cancelled")
            done = wait_for(lambda: (i := _instance(c, first)) and i["ended"] and i)
            assert done["state"]["reminders"] == 1 and done["timers"] == []

            second = _place(c)
            wait_for(lambda: len((_instance(c, second) or {}).get("timers", [])) == 2)
            # past both due times, and killed at once: before, during or after the runs
            c.post("/_test/clock", json={"seconds": 16 * 60})
        server.kill()
        server = ProcessServer(tmp_path, store, None).start()
        with server.client() as c:
            # a new process: its test clock starts at real time again; move it past
            c.post("/_test/clock", json={"seconds": 16 * 60})
            wait_for(lambda: _status(c, second) == "cancelled", timeout=30)
            wait_for(lambda: (_instance(c, second) or {}).get("ended"), timeout=30)
            events = c.get("/events", params={"limit": 1000}).json()["events"]
        fired = [e for e in events if e["type"] == "$TimerFired"]
        assert sorted(e["data"]["timer"] for e in fired) == [
            "PaymentDue",
            "PaymentDue",
            "Reminder",
            "Reminder",
        ]
        cancelled = [e for e in events if e["type"] == "Shop.Cancelled"]
        assert len(cancelled) == 2
        reminded = [e for e in events if e["type"] == "Shop.Reminded"]
        assert len(reminded) == 4  # two items, two orders, each once
    finally:
        server.stop()


def test_the_test_clock_is_refused_with_tokens(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    done = subprocess.run(
        [*STORMGEN, "run", str(MODEL), "--store", store, "--test-clock", "--port", "8999"],
        cwd=tmp_path,
        env=clean_env(STORMGEN_TOKENS="c1=Clerk"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "test clock is refused with tokens" in done.stderr
    assert "Traceback" not in done.stderr
