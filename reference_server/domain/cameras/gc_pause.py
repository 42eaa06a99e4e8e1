"""Pause Python's cyclic garbage collector around a bulk load (``ansim cameras import``).

An import allocates millions of short-lived tuples and strings and keeps a map with one entry per
row; each allocation burst triggers collections, and the oldest generation's collections walk the
whole growing heap. Profiled on the 1.6 M-row import, that was about 40 % of the writer's CPU
(42 → 25 s). Nothing an import makes forms reference cycles (tuples, strings, numbers, protobuf
messages, sqlite3 rows), so reference counting frees all of it; the collector is switched back on
(if it was on) when the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block; the previous state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
