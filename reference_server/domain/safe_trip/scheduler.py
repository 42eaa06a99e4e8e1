"""The background task that detects overdue, off-route and silent trips and escalates them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.domain.safe_trip.engine import SafeTrips

log = logging.getLogger("ansim.safe_trip")

#: One pass per second keeps detection (≤ 30 s) and escalation (≤ 5 s) latencies far inside the spec.
TICK_S = 1.0


class TripScheduler:
    def __init__(self, trips: SafeTrips, tick_s: float = TICK_S) -> None:
        self.trips = trips
        self.tick_s = tick_s
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.trips.tick()
            except AnsimError as error:
                if error.reason == error_pb2.ERROR_REASON_SERVER_UNAVAILABLE:
                    return  # the store closed: the center is stopping
                log.exception("safe-trip scheduler pass failed")
            except Exception:
                log.exception("safe-trip scheduler pass failed")
            await self.trips.ctx.clock.sleep(self.tick_s)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="ansim-safe-trip")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
