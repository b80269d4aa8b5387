"""How the service answers while its PostgreSQL server is down, and how soon it recovers.

Serves the coffee shop (examples/coffee_shop.storm) with ``stormgen run`` on a private
PostgreSQL server (initdb in a temporary folder, a free port; as root it runs as the
``postgres`` user; the machine's shared server is never touched). Clients place orders
without pause while ``/health`` is polled every 0.2 s; the server is stopped (``pg_ctl
-m fast``) for each outage length in turn and started again. Per outage:

- ``first_503_s``: from the stop to the first 503 answer;
- ``max_command_s``: the longest a command started during the outage waited for its
  answer; ``answers``: the status codes of the commands started during it;
- ``max_health_s``: the longest ``/health`` took during the outage, and its statuses;
- ``first_success_s``: from the start to the first command answered 201;
- ``healthy_s``: from the start to the first ``/health`` answered 200;
- ``errors``: transport errors and 500s over the whole run (must stay 0).

    python benchmarks/bench_outage.py [--outages 1,5,15] [--clients 4]

Prints JSON (its last line).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from e2e_support import CUSTOMER, PrivatePostgres, Server  # noqa: E402

ORDER = {"customer": "Ada", "drinks": [{"name": "Latte", "price": "3.50"}], "total": "3.50"}


@dataclass(frozen=True)
class Answer:
    """One request: when it started and ended (monotonic seconds) and its status."""

    kind: str  # "command" or "health"
    started: float
    ended: float
    status: int  # 0: a transport error


class Load:
    """Clients placing orders and a /health poller, recording every answer."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._commands) for _ in range(clients)]
        self.threads.append(threading.Thread(target=self._health))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def _commands(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as c:
            while not self.stopping.is_set():
                self._record(
                    "command",
                    lambda: c.post("/ordering/order/place-order", json=ORDER, headers=CUSTOMER),
                )

    def _health(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as c:
            while not self.stopping.is_set():
                self._record("health", lambda: c.get("/health"))
                self.stopping.wait(0.2)

    def _record(self, kind: str, call: Any) -> None:
        started = time.monotonic()
        try:
            status = call().status_code
        except httpx.TransportError:
            status = 0
            time.sleep(0.05)
        self.answers.append(Answer(kind, started, time.monotonic(), status))


def _outage(database: PrivatePostgres, load: Load, seconds: float) -> dict[str, Any]:
    stopped = time.monotonic()
    database.stop()
    time.sleep(seconds)
    started = time.monotonic()
    database.start()
    deadline = started + 60
    while time.monotonic() < deadline:
        after = [a for a in load.answers if a.ended > started]
        if any(a.kind == "command" and a.status == 201 for a in after) and any(
            a.kind == "health" and a.status == 200 for a in after
        ):
            break
        time.sleep(0.05)
    time.sleep(1.0)  # the load goes on a little: the next outage starts from steady state
    answers = list(load.answers)
    during = [a for a in answers if stopped <= a.started < started]
    commands = [a for a in during if a.kind == "command"]
    health = [a for a in during if a.kind == "health"]
    refused = [a.ended for a in answers if a.status == 503 and a.ended >= stopped]
    ok = [a.ended for a in answers if a.kind == "command" and a.status == 201 and a.ended > started]
    healthy = [
        a.ended for a in answers if a.kind == "health" and a.status == 200 and a.ended > started
    ]
    return {
        "outage_s": seconds,
        "first_503_s": round(min(refused) - stopped, 2) if refused else None,
        "max_command_s": round(max((a.ended - a.started for a in commands), default=0.0), 2),
        "answers": _count(commands),
        "max_health_s": round(max((a.ended - a.started for a in health), default=0.0), 2),
        "health_answers": _count(health),
        "first_success_s": round(min(ok) - started, 2) if ok else None,
        "healthy_s": round(min(healthy) - started, 2) if healthy else None,
    }


def _count(answers: list[Answer]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        counts[str(answer.status)] = counts.get(str(answer.status), 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", default="1,5,15", help="outage lengths in seconds")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    why = PrivatePostgres.missing()
    if why:
        sys.exit(f"cannot run a private PostgreSQL server: {why}")
    database = PrivatePostgres().init()
    workdir = Path(tempfile.mkdtemp(prefix="stormgen-outage-"))
    server = Server(workdir, f"{database.url}?schema=shop").start(timeout=120)
    try:
        with Load(server.url, args.clients) as load:
            time.sleep(2.0)  # steady state first
            outages = [_outage(database, load, float(s)) for s in args.outages.split(",")]
        errors = sum(1 for a in load.answers if a.status in (0, 500))
        result = {
            "clients": args.clients,
            "commands": sum(1 for a in load.answers if a.kind == "command"),
            "errors": errors,
            "outages": outages,
        }
    finally:
        server.stop()
        database.remove()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
