"""The one clock the runtime reads time through (docs/runtime.md, "Clock").

Processes' timers are due by it and fired when it says so. Production uses
`SystemClock`; tests use `TestClock`, real time moved on by hand (`advance`), so a
test can say "15 minutes pass" without waiting. A served service gets a `TestClock`
only when asked for it (`stormgen serve --test-clock`, or `STORMGEN_TEST_CLOCK=1`),
never with tokens configured.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: The environment variable that gives a served service a test clock (``1``).
TEST_CLOCK_ENV = "STORMGEN_TEST_CLOCK"


class Clock(Protocol):
    """Where the runtime reads the time."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


#: The machine's clock, which every definition reads `now()` through until an
#: application (or a scenario) binds its own.
SYSTEM_CLOCK: Clock = SystemClock()


class TestClock:
    """Real time plus an offset that `advance` grows: time goes on as usual, and jumps
    forward when a test says so. Listeners (the timer scheduler) hear of every jump."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        """How far ahead of real time this clock is."""
        return self._offset

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by `by` (never back); return the new time."""
        if by < timedelta():
            raise ValueError("a test clock only moves forward")
        with self._lock:
            self._offset += by
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self.now()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every `advance`."""
        with self._lock:
            self._listeners.append(listener)


def default_clock() -> Clock:
    """A `TestClock` when `STORMGEN_TEST_CLOCK` is ``1``, else the `SystemClock`."""
    return TestClock() if os.environ.get(TEST_CLOCK_ENV) == "1" else SystemClock()
