"""The cyclic garbage collector of a serving center: start-up heap frozen, full collections rare.

A center's heap after start-up (protobuf descriptors, the camera index, geometry, the demo data) is
≈ 110,000 container objects that live as long as the process; with 1,000 event streams open another
≈ 85,000–110,000 come and stay. CPython's default thresholds (700, 10, 10) ran a full (generation 2)
collection every 2–4 s under the fan-out bench, each walking that whole heap: 75–155 ms during which
the event loop served nothing — the slowest rounds of the ``fanout`` bench (issue 6) were those
pauses. :func:`settle_after_start` is called once, when the center is serving:

* ``gc.collect()`` then ``gc.freeze()``: what start-up left is moved to the permanent generation,
  which collections never walk (garbage is collected first, so none of it is frozen);
* thresholds :data:`THRESHOLDS`: a young collection every 10,000 net container allocations
  (instead of 700; each stays a few ms), a full one only after 20 × 100 of those. Cyclic garbage
  (closed streams, finished calls) is still collected, later; a full collection still happens on a
  long-running center, just rarely.

RSS is unchanged by the freeze (no copy is made); the later collection keeps cyclic garbage a
little longer (``bench --only server``: RSS with 1.6 M cameras stays within its 500 MB target).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("ansim.gc")

#: (young, middle, full) thresholds for :func:`gc.set_threshold`.
THRESHOLDS = (10_000, 20, 100)


def settle_after_start() -> None:
    """Collect, freeze the start-up heap and raise the collection thresholds (see the module)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    log.info(
        "start-up heap frozen", extra={"frozen_objects": gc.get_freeze_count(), "gc_thresholds": THRESHOLDS}
    )
