"""The demo's local scenarios (issue #4), each against one center's public gRPC API: a child's
school arrival and danger-zone entry (:mod:`.child_scenario`), an emergency bell press
(:mod:`.bell_scenario`) and an overdue safe trip (:mod:`.trip_scenario`).

The child and trip scenarios run in TEST mode with the short TEST timers the spec allows (the
cluster's ``TEST_TIMERS``); the three play at the same time, so the demo waits for those timers once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from reference_server.demo.bell_scenario import bell
from reference_server.demo.child_scenario import child
from reference_server.demo.trip_scenario import trip_overdue

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

CHILD = "child: school arrival and danger-zone entry"
BELL = "emergency bell press"
TRIP = "safe trip overdue"


async def play(demo: Demo) -> None:
    """Play the three scenarios at the same time and report them in a fixed order."""
    before = len(demo.results)
    await asyncio.gather(
        demo.scenario(CHILD, lambda: child(demo), needs=("seoul-jongno", "ansim.v1.ChildSafetyService")),
        demo.scenario(BELL, lambda: bell(demo), needs=("anyang", "ansim.v1.TagEventService")),
        demo.scenario(TRIP, lambda: trip_overdue(demo), needs=("seoul-jongno", "ansim.v1.SafeTripService")),
    )
    order = [CHILD, BELL, TRIP]
    demo.results[before:] = sorted(demo.results[before:], key=lambda r: order.index(r.name))
