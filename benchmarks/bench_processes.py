"""Benchmark processes and their timers on SQLite (files in /dev/shm when it exists).

Usage: ``python benchmarks/bench_processes.py [--instances N] [--timers M] [--idle S]``

- ``handler``: N process instances, each started, advanced by one event and ended by a
  third (3N events), consumed by one process (``Application.run_consumers``); events/s.
  ``baseline``: the same 3N events consumed by the nearest thing the runtime had
  before, a view keeping the state per key plus two stateless policies reacting to
  the events (issuing nothing); events/s; ``ratio`` = baseline / handler (the cost of
  the process relative to it).
- ``firing``: M instances each with a timer, all made due by a test clock, fired by
  ``fire_timers`` (each a transaction: claim, handler, decisions, drop); timers/s.
- ``idle_cpu``: with the M timers pending and none due, the timer thread running for
  S seconds: the process's CPU time over the wall time (fraction of one core).

Prints a line per figure, then LAST one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from stormgen.runtime import (
    Aggregate,
    Application,
    Command,
    Envelope,
    Event,
    Policy,
    Process,
    RetrySettings,
    Step,
    TestClock,
    View,
    on_event,
    on_timer,
)


@dataclass(frozen=True, slots=True)
class Begin(Command, name="Bench.Begin", aggregate="Bench.Job", creates=True):
    job_id: UUID


@dataclass(frozen=True, slots=True)
class Advance(Command, name="Bench.Advance", aggregate="Bench.Job"):
    job_id: UUID


@dataclass(frozen=True, slots=True)
class Finish(Command, name="Bench.Finish", aggregate="Bench.Job"):
    job_id: UUID


@dataclass(frozen=True, slots=True)
class Begun(Event, name="Bench.Begun", aggregate="Bench.Job"):
    job_id: UUID


@dataclass(frozen=True, slots=True)
class Advanced(Event, name="Bench.Advanced", aggregate="Bench.Job"):
    job_id: UUID


@dataclass(frozen=True, slots=True)
class Finished(Event, name="Bench.Finished", aggregate="Bench.Job"):
    job_id: UUID


@dataclass(frozen=True, slots=True)
class JobState:
    steps: int = 0


class Job(Aggregate[JobState]):
    name = "Bench.Job"
    id_field = "job_id"
    state_type = JobState
    commands = (Begin, Advance, Finish)
    events = (Begun, Advanced, Finished)

    def initial_state(self) -> JobState:
        return JobState()

    def decide(self, state: JobState, command: Command) -> list[Event]:
        kind = {Begin: Begun, Advance: Advanced, Finish: Finished}[type(command)]
        return [kind(job_id=command.job_id)]  # type: ignore[attr-defined]

    def apply(self, state: JobState, event: Event) -> JobState:
        return replace(state, steps=state.steps + 1)


@dataclass(frozen=True, slots=True)
class Tracking:
    job_id: UUID
    steps: int = 0
    done: bool = False


class Tracker(Process[Tracking]):
    name = "Bench.Tracker"
    key = "job_id"
    key_type = UUID
    state_type = Tracking
    events = (Begun, Advanced, Finished)
    starts = (Begun,)
    timers = ("Due",)
    timed = False

    @on_event(Begun)
    def begun(self, step: Step[Tracking], event: Begun) -> None:
        if self.timed:
            # due far ahead: a slow fill on a loaded machine must not make them due early
            step.timer("Due", after=timedelta(days=1))

    @on_event(Advanced)
    def advanced(self, step: Step[Tracking], event: Advanced) -> None:
        step.assign(steps=step.state.steps + 1)

    @on_event(Finished)
    def finished(self, step: Step[Tracking], event: Finished) -> None:
        step.assign(done=True)
        step.end()

    @on_timer("Due")
    def due(self, step: Step[Tracking]) -> None:
        step.end()


class TrackingView(View[Tracking]):
    name = "Bench.TrackingView"
    row_type = Tracking
    key = "job_id"
    events = (Begun, Advanced, Finished)

    def update(self, row: Tracking, event: Event, envelope: Envelope) -> Any:
        if isinstance(event, Advanced):
            return replace(row, steps=row.steps + 1)
        if isinstance(event, Finished):
            return replace(row, done=True)
        return row


class Quiet(Policy):
    events = (Begun, Advanced, Finished)

    def commands(self, event: Any, envelope: Envelope) -> list[Command]:
        return []


class QuietA(Quiet):
    name = "Bench.QuietA"


class QuietB(Quiet):
    name = "Bench.QuietB"


RETRY = RetrySettings(idle_timeout=1.0)


def _url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}"


def _fill(app: Application, n: int, steps: bool = True) -> int:
    ids = [uuid4() for _ in range(n)]
    app.handle_together([lambda i=i: app.handle(Begin(job_id=i)) for i in ids])
    if steps:
        app.handle_together([lambda i=i: app.handle(Advance(job_id=i)) for i in ids])
        app.handle_together([lambda i=i: app.handle(Finish(job_id=i)) for i in ids])
    return app.store.last_position()


def handler(folder: Path, n: int) -> dict[str, float]:
    url = _url(folder, "handler.db")
    with Application.open(url, aggregates=[Job()], retry=RETRY) as app:
        events = _fill(app, n)
    with Application.open(url, aggregates=[Job()], processes=[Tracker()], retry=RETRY) as app:
        start = time.perf_counter()
        app.run_consumers(timeout=3600)
        process_s = time.perf_counter() - start
    views = [TrackingView()]
    policies = [QuietA(), QuietB()]
    with Application.open(
        url, aggregates=[Job()], views=views, policies=policies, retry=RETRY
    ) as app:
        start = time.perf_counter()
        app.run_consumers(timeout=3600)
        baseline_s = time.perf_counter() - start
    return {
        "events": events,
        "handler_events_per_s": round(events / process_s),
        "baseline_events_per_s": round(events / baseline_s),
        "ratio": round(process_s / baseline_s, 2),
    }


def timers(folder: Path, m: int, idle: float) -> dict[str, float]:
    url = _url(folder, "timers.db")
    tracker = Tracker()
    tracker.timed = True
    clock = TestClock()
    with Application.open(
        url, aggregates=[Job()], processes=[tracker], clock=clock, retry=RETRY
    ) as app:
        _fill(app, m, steps=False)
        app.run_consumers(timeout=3600)
        # none due: the timer thread's idle cost
        app.start()
        time.sleep(1.0)  # let it settle (the consumers have nothing to do)
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(idle)
        idle_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)
        app.stop()
        clock.advance(timedelta(days=2))
        start = time.perf_counter()
        fired = app.fire_timers()
        firing_s = time.perf_counter() - start
    return {
        "timers": fired,
        "firing_per_s": round(fired / firing_s),
        "idle_cpu_fraction": round(idle_cpu, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="bench-processes-", dir=where) as tmp:
        folder = Path(tmp)
        result = {"handler": handler(folder, args.instances)}
        print("handler", result["handler"], flush=True)
        result["timers"] = timers(folder, args.timers, args.idle)
        print("timers", result["timers"], flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
