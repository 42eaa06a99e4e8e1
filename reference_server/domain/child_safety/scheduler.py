"""The child-safety background task: escalation deadlines (GRD-003), danger-zone exits (TAG-014),
missed expected arrivals (TAG-015) and emergencies still to raise, once per tick (1 s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import emergency_pb2, error_pb2
from ansim.v1 import guardian_pb2 as gd

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock
from reference_server.domain.child_safety.derivation import danger_exits, missed_arrivals, record_derived
from reference_server.domain.child_safety.ingest import Ingest
from reference_server.domain.child_safety.notifications import Derived, Notifier
from reference_server.store.interface import Store

log = logging.getLogger("ansim.child_safety")

TICK_S = 1.0
#: A derived emergency not raised this long after its event is retried.
RAISE_RETRY_AFTER = timedelta(seconds=10)
#: Missed expected arrivals are checked this often: TEST-mode ones are due within 5 s [TAG-023].
MISSED_CHECK_EVERY = timedelta(seconds=2)


class Scheduler:
    def __init__(self, store: Store, clock: Clock, notifier: Notifier, ingest: Ingest) -> None:
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.ingest = ingest
        self._task: asyncio.Task[None] | None = None
        self._last_missed_check: datetime | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="ansim-child-safety")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except RuntimeError:
                return  # the store was closed: the center is stopping
            except AnsimError as error:
                if error.reason == error_pb2.ERROR_REASON_SERVER_UNAVAILABLE:
                    return
                log.exception("child-safety scheduler tick failed")
            except Exception:
                log.exception("child-safety scheduler tick failed")
            await self.clock.sleep(TICK_S)

    async def tick(self) -> None:
        """Run every time-based rule once."""
        now = self.clock.now()
        await self.escalate_due(now)
        async with self.store.transaction() as tx:
            for d in await danger_exits(tx, now, self.notifier.test_exit_absence):
                await record_derived(tx, d)
                await self.notifier.create(tx, d)
        if self._last_missed_check is None or now - self._last_missed_check >= MISSED_CHECK_EVERY:
            self._last_missed_check = now
            async with self.store.transaction() as tx:
                for d in await missed_arrivals(tx, tx, now):
                    await record_derived(tx, d)
                    await self.notifier.create(tx, d)
        if self.ingest.ports.emergencies is not None:
            for d in await self.ingest.pending_emergencies(now - RAISE_RETRY_AFTER):
                await self.ingest.raise_emergency(d)

    async def escalate_due(self, now: datetime) -> None:
        at_police: list[str] = []
        for derived_event_id in await self.notifier.due(self.store, now):
            async with self.store.transaction() as tx:
                level = await self.notifier.escalate(tx, derived_event_id)
                row = await tx.fetchone(
                    "SELECT kind, emergency FROM cs_derived WHERE id = ?", (derived_event_id,)
                )
                if (
                    level == gd.ESCALATION_LEVEL_CENTER
                    and row is not None
                    and int(row["kind"]) == cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE
                    and not row["emergency"]
                ):
                    # GRD-006: the danger-zone emergency is raised now (after this commit).
                    await tx.execute(
                        "UPDATE cs_derived SET emergency_kind = ? WHERE id = ?",
                        (emergency_pb2.EMERGENCY_KIND_DANGER_ZONE_ENTRY, derived_event_id),
                    )
                if level == gd.ESCALATION_LEVEL_POLICE_112:
                    log.info("notification reached POLICE_112", extra={"derived": derived_event_id})
                    if row is not None and row["emergency"]:
                        at_police.append(str(row["emergency"]))
        for d in await self.ingest.pending_emergencies(now + timedelta(seconds=1)):
            if d.kind == cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE:
                await self.ingest.raise_emergency(d)
        port = self.ingest.ports.emergencies
        if port is None:
            return
        for emergency in at_police:
            # GRD-007, after the escalation committed (the port runs its own transaction). An
            # emergency not raised yet is dispatched when it is (a raise requests 112 at once).
            if not await port.ensure_dispatched(emergency):
                log.warning("no 112 dispatch for the emergency at POLICE_112", extra={"emergency": emergency})


__all__ = ["Derived", "Scheduler"]
