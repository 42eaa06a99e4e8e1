"""The home center as the handling center: handing off an emergency raised here and handled here
when she leaves the center's area (spec §17.6).

The rules are those of any handling center [FED-019]: two consecutive current fixes, at least 10 s
apart by ``fix_time``, each with its whole uncertainty region outside the service area, start a
handoff to the top candidate for the latest fix, with ``via = [home]`` and the home emergency as
``previous_emergency``; until one is accepted the home center keeps handling and retries every
30 s [FED-021]. Once accepted, the home emergency is *not* TRANSFERRED [EMG-025]: its dispatches
are SUPERSEDED, its video grants revoked, ``handling_center`` moves to the new center, and fixes are
relayed there from then on, exactly as after a forward.

The same rule applies while the home center handles the emergency in **fallback** [FED-014]: once
two such fixes show she has left its area, it tries at once the center responsible for her latest
fix with a recovery forward (reason FALLBACK), rather than waiting for the next recovery slot, and
then every 30 s, doubling, as any recovery [FED-015]. A handoff or recovery carries the emergency
as it is now: her latest fix, duress flag, nature and profile (:mod:`.current`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ansim.v1 import common_pb2, directory_pb2, federation_pb2
from shapely.geometry.base import BaseGeometry

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.directory.geometry import area_geometry, intersects_region
from reference_server.domain.federation.current import current_forwarded, with_latest_fix
from reference_server.domain.federation.handling import ACTIVE_STATES
from reference_server.domain.federation.mirror import center_of

if TYPE_CHECKING:
    from reference_server.domain.federation.engine import Federation

log = logging.getLogger("ansim.federation")
#: Route statuses in which the home center handles the emergency itself and watches her fixes.
WATCHED = ("LOCAL", "FALLBACK")


class HomeHandoff:
    """Watches the fixes of emergencies handled here that were raised here (route LOCAL)."""

    def __init__(
        self,
        federation: Federation,
        *,
        gap: timedelta,
        retry: timedelta,
    ) -> None:
        self.fed = federation
        self.gap = gap
        self.retry = retry
        self._running: set[str] = set()
        self._area: tuple[directory_pb2.CenterEntry, BaseGeometry] | None = None

    def _service_area(self, me: directory_pb2.CenterEntry) -> BaseGeometry:
        """This center's service area as a geometry, built once per registry entry (a reload
        replaces the entry object)."""
        if self._area is None or self._area[0] is not me:
            self._area = (me, area_geometry(me.service_area))
        return self._area[1]

    async def moved(
        self,
        emergency: str,
        locations: Sequence[common_pb2.Location],
        seen: Mapping[str, Any] | None = None,
    ) -> None:
        """New fixes at home: keep the latest as current and start a handoff when it is due
        [FED-019]; ``seen``: the route's row as the caller just read it (else read here)."""
        me = self.fed.registry.me
        if me is None or not me.HasField("service_area") or not locations:
            return
        latest = max(locations, key=lambda f: (f.fix_time.seconds, f.fix_time.nanos))
        inside = intersects_region(self._service_area(me), latest)
        if seen is None:
            seen = await self.fed.ctx.store.fetchone(
                "SELECT status, outside_since FROM fed_routes WHERE home_emergency = ?", (emergency,)
            )
        if seen is None or seen["status"] not in WATCHED or (inside and not seen["outside_since"]):
            return  # the usual case, inside the area: nothing to record, no write per fix
        async with self.fed.ctx.store.transaction() as tx:
            route = await tx.fetchone("SELECT * FROM fed_routes WHERE home_emergency = ?", (emergency,))
            if route is None or route["status"] not in WATCHED:
                return
            status = route["status"]
            sent = federation_pb2.ForwardedEmergency.FromString(route["emergency"])
            forwarded = with_latest_fix(sent, latest)
            if forwarded is sent:
                return  # an older fix is not current (LOC-004)
            when = latest.fix_time.ToDatetime(tzinfo=tx.now.tzinfo)
            since = from_rfc3339(route["outside_since"]) if route["outside_since"] else None
            before = sent.location.fix_time.ToDatetime(tzinfo=tx.now.tzinfo)
            was_due = since is not None and before - since >= self.gap
            if inside:
                since = None
            elif since is None:
                since = when
            await tx.execute(
                "UPDATE fed_routes SET emergency = ?, outside_since = ?, update_time = ?"
                " WHERE home_emergency = ?",
                (
                    forwarded.SerializeToString(),
                    to_rfc3339(since) if since else None,
                    to_rfc3339(tx.now),
                    emergency,
                ),
            )
            self.fed.routes.changed(tx, emergency)
        due = since is not None and when - since >= self.gap
        if due and status == "FALLBACK" and not was_due:
            await self.fed.recover_now(emergency)  # she left: try the center for her new location
        elif due and status == "LOCAL" and emergency not in self._running:
            self._running.add(emergency)
            self.fed._spawn(self._loop(emergency), f"ansim-home-handoff-{emergency}")

    async def _active(self, emergency: str) -> federation_pb2.ForwardedEmergency | None:
        """The route's latest ForwardedEmergency while the emergency is active and handled here."""
        store = self.fed.ctx.store
        route = await store.fetchone(
            "SELECT status, emergency FROM fed_routes WHERE home_emergency = ?", (emergency,)
        )
        row = await store.fetchone("SELECT state FROM emergencies WHERE name = ?", (emergency,))
        if route is None or route["status"] != "LOCAL" or row is None or row["state"] not in ACTIVE_STATES:
            return None
        sent = federation_pb2.ForwardedEmergency.FromString(route["emergency"])
        return await current_forwarded(self.fed.ctx.domain.emergencies, sent, self.fed.ctx.clock.now())

    async def _loop(self, emergency: str) -> None:
        try:
            while (forwarded := await self._active(emergency)) is not None:
                if await self._try(emergency, forwarded):
                    return
                await asyncio.sleep(self.retry.total_seconds())  # keep handling; retry [FED-021]
        finally:
            self._running.discard(emergency)

    async def _try(self, emergency: str, forwarded: federation_pb2.ForwardedEmergency) -> bool:
        fed = self.fed
        resolution = await fed.router.resolve(forwarded.location, bypass_cache=True)
        candidates = fed._usable_candidates(resolution)
        if not candidates:
            return False
        handler = fed.ctx.domain.forwarded
        request = federation_pb2.HandoffEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=forwarded,
            home_center=fed.me,
            previous_emergency=emergency,
            via=[fed.me],
            prior_dispatches=await handler.prior_dispatches(emergency) if handler is not None else [],
        )
        if resolution.evidence is not None:
            request.routing_evidence.CopyFrom(resolution.evidence)
        accepted = await fed.offer_handoff(candidates, request, forwarded.incident_id)
        if accepted is None:
            return False
        outcome, response = accepted
        handling = response.emergency
        async with fed.ctx.store.transaction() as tx:
            await tx.execute(
                "UPDATE fed_routes SET status = 'FORWARDED', handling_center = ?, handling_emergency = ?,"
                " outside_since = NULL, update_time = ? WHERE home_emergency = ?",
                (center_of(handling), handling, to_rfc3339(tx.now), emergency),
            )
            fed.routes.changed(tx, emergency)
            await fed.inbox.register(tx, emergency, handling)
            await tx.append_audit(
                fed.me,
                "federation.handed_off",
                emergency,
                f"incident {forwarded.incident_id} to {outcome.center}",
                "ok",
            )
        log.info(
            "handed off",
            extra={
                "event": "handoff",
                "incident": forwarded.incident_id,
                "peer": outcome.center,
                "handling": handling,
            },
        )
        if handler is not None:  # supersede, revoke, handling_center moves; never TRANSFERRED [EMG-025]
            entry = fed.registry.get(center_of(handling))
            await handler.forward_accepted(emergency, handling, entry.display_name_ko if entry else "")
        return True
