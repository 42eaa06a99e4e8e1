"""Mutant: a trip's fixes never reach its emergency.

Defect: UpdateTripLocation stores and answers as usual, but the fixes it accepts are not added to
the emergency of an ESCALATED trip (nor to the silent emergency of a duress end), so the operators
keep seeing the location she had when the trip escalated [TRIP-018, the fix half of TRIP-013
broken]. Escalation itself, the emergency it raises and the trip's own location are untouched.

Expected to fail: TC_TRIP_020_SRV (a fix sent after ESCALATE_NOW becomes the emergency's current
location and raises its fix count within 5 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim.v1 import common_pb2

from reference_server.domain.safe_trip.engine import SafeTrips

CAUGHT_BY = ("TC_TRIP_020_SRV",)


async def _drop(self: SafeTrips, emergency: str, locations: list[common_pb2.Location], key: str) -> None:
    return None


def install(ctx: Any, server: Any) -> Sequence[str]:
    SafeTrips._forward_fixes = _drop  # type: ignore[method-assign]
    return []
