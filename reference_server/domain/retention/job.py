"""The background task that runs the registered purges and audits each one [PRV-010] [PRV-014]."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock, to_rfc3339
from reference_server.domain.retention.registry import RegisteredPurge, RetentionRegistry
from reference_server.store.sqlite import SqliteStore

log = logging.getLogger("ansim.retention")

#: Audit identity of the purge.
ACTOR = "system/retention"
ACTION = "PURGE"
#: The job runs at least this often (PRV-010 allows 24 hours; an hour keeps the lag small) …
MAX_INTERVAL = timedelta(minutes=10)
#: … and never more often than this.
MIN_INTERVAL = timedelta(seconds=1)


class RetentionJob:
    """Runs every registered purge each interval; start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, registry: RetentionRegistry, store: SqliteStore, clock: Clock) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def interval(self) -> timedelta:
        """A fifth of the shortest period, within [MIN_INTERVAL, MAX_INTERVAL]."""
        shortest = self.registry.shortest_period()
        if shortest is None:
            return MAX_INTERVAL
        return max(MIN_INTERVAL, min(MAX_INTERVAL, shortest / 5))

    async def run_once(self) -> dict[str, int]:
        """Run every purge now; returns the count per data class."""
        counts: dict[str, int] = {}
        for purge in self.registry.purges:
            try:
                counts[purge.data_class] = counts.get(purge.data_class, 0) + await self._purge(purge)
            except AnsimError as error:
                if error.reason == error_pb2.ERROR_REASON_SERVER_UNAVAILABLE:
                    raise  # the store closed: the center is stopping
                log.exception("purge failed", extra={"data_class": purge.data_class})
            except Exception:
                log.exception("purge failed", extra={"data_class": purge.data_class})
        return counts

    async def _purge(self, purge: RegisteredPurge) -> int:
        async with self.store.transaction() as tx:
            cutoff = tx.now - purge.period
            count = await purge.purge(tx, cutoff)
            if count:
                await tx.append_audit(
                    ACTOR,
                    ACTION,
                    purge.data_class,
                    "retention",
                    f"deleted {count}; cutoff {to_rfc3339(cutoff)};"
                    f" period {int(purge.period.total_seconds())}s",
                )
            return count

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except AnsimError:
                return
            await self.clock.sleep(self.interval().total_seconds())

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="ansim-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
