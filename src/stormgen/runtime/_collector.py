"""Long decodes run with Python's cycle collector paused (docs/runtime.md, "Store decisions").

Decoding events makes no reference cycles, yet every object it makes counts towards the
collector's next run: a 1,000-event page set off about three collections, and their
cadence set off full ones, each walking the whole heap (~40 % of loading a 10,000-event
stream). Paused, a decode sets off at most one collection, after it, by which time the
caller has often dropped what it decoded.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: A page of the log's JSON text from this many characters on (some 50 events) is
#: decoded with the collector paused; a command's few events are decoded as they come.
LONG_TEXT = 8192

#: A result of this many rows (a tuple each) is fetched and decoded with the collector
#: paused.
LONG_ROWS = 64


def without_collections(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` with the cycle collector paused, then running again.

    The pause holds for the whole process (other threads' garbage waits those few
    milliseconds); a collector the program has disabled stays disabled.
    """
    if not gc.isenabled():
        return work(*args, **kwargs)
    gc.disable()
    try:
        return work(*args, **kwargs)
    finally:
        gc.enable()
