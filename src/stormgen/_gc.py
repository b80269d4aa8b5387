"""Pause Python's cyclic garbage collector around work that makes no garbage cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, keep: bool = False) -> Iterator[None]:
    """Disable the cyclic collector inside the block, restoring its former state after.

    Loading and checking a model allocate millions of small, acyclic objects; each
    collection then walks the whole live model again, which made the time grow faster
    than the model (a third of the time on large models). Reference counting still
    frees everything as usual.

    The objects made inside are all in the youngest generation at the end, and the
    first collection after would walk them all. With ``keep`` (for work whose objects
    live on, e.g. until the process ends), they go straight to the oldest generation
    instead (``gc.freeze`` then ``gc.unfreeze``, which do not walk them); this also
    unfreezes whatever was frozen before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if keep:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
