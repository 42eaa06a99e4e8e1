"""The emergency area's side of federation (spec §10.12, §17): routing an emergency raised here
before anything is dispatched, handling emergencies forwarded or handed off to this center, and
showing a handling center's progress on the home emergency.

**Raised here.** When federation runs (``ctx.domain.router``), an emergency that becomes RAISED is
not dispatched in that transaction: a row of ``emergency_routing`` records it as undecided and,
once committed, :meth:`EmergencyRouter.route` resolves it. The decision comes back through this
class, which implements :class:`~reference_server.domain.ports.ForwardedEmergencyHandler`:

- *handle here* — :meth:`Federated.handle_locally` (the top candidate is this center, or a peer
  refused with a loop). A separate method rather than ``handle_fallback``: a local decision is the
  normal case, is not audited as a fallback and shows no other center's contact;
- *forwarded* — :meth:`Federated.forward_accepted`: ``handling_center`` moves and the app's watch
  stream gets HANDLING_CENTER_CHANGED at once (not only when the ``started`` mirror arrives); a
  fallback's own dispatches are SUPERSEDED [FED-015];
- *fallback* — :meth:`Federated.handle_fallback`, within 5 s of RAISED [FED-014].

Each decision is taken once (``emergency_routing.decision``), so a late forward never dispatches
twice. A watchdog in the SOS timer restarts routing after a restart of this center and, should no
decision arrive 6 s after RAISED (a lost background task), handles the emergency here: an SOS is
never dropped.

**Handled here for another home center.** Federation accepts the forward or handoff and calls
:meth:`Federated.handle_forwarded` in its transaction; the emergency is created under federation's
name and handled as if raised here (cameras, dispatch to this center's agencies for the location).
Its later state changes and every dispatch change are queued for the home center through
:meth:`EmergencyRouter.mirror` [FED-023]; fixes, a duress cancel and the end of the emergency
(cancel at home, handoff) come from federation through the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from ansim.v1 import camera_pb2, common_pb2, directory_pb2, dispatch_pb2, emergency_pb2, federation_pb2

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.dispatch import repository as dispatches
from reference_server.domain.dispatch.agencies import POLICE
from reference_server.domain.emergencies import events, ids, repository, states, views
from reference_server.domain.emergencies.events import timestamp
from reference_server.domain.emergencies.repository import EmergencyRecord
from reference_server.domain.ports import RouteWriter
from reference_server.events.publisher import Event
from reference_server.interceptors.metrics import ACTIVE_EMERGENCIES
from reference_server.store.interface import Transaction
from reference_server.store.sqlite import SqliteTransaction

if TYPE_CHECKING:
    from reference_server.domain.emergencies.service import EmergencyDomain

log = logging.getLogger("ansim.emergency.federation")
E = emergency_pb2
#: No routing decision this long after RAISED: handle it here (the router's own bound is 5 s).
WATCHDOG = timedelta(seconds=6)
SCAN_EVERY_S = 1.0
#: Mirrored dispatch states that make the home emergency DISPATCHED / ON_SCENE (§10.3).
_DISPATCHED = (dispatch_pb2.DISPATCH_STATE_ACKNOWLEDGED, dispatch_pb2.DISPATCH_STATE_EN_ROUTE)
_ORDER: dict[int, int] = {
    E.EMERGENCY_STATE_RAISED: 1,
    E.EMERGENCY_STATE_ACKNOWLEDGED: 2,
    E.EMERGENCY_STATE_DISPATCHED: 3,
    E.EMERGENCY_STATE_ON_SCENE: 4,
}


def _center(resource: str) -> str:
    return "/".join(resource.split("/")[:2])


class Federated:
    """See module docstring."""

    def __init__(self, domain: EmergencyDomain) -> None:
        self.domain = domain
        self.ctx = domain.ctx
        self.store = domain.store
        self.center = domain.center
        self._routing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_scan = 0.0

    @property
    def router(self) -> Any:
        return self.ctx.domain.router

    async def drain(self) -> None:
        """Let the routing/forwarding started for committed work finish (shutdown; the center bounds
        the wait and cancelling this cancels them; an unfinished route is retried by ``tick``)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.get_running_loop().create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- raised here: routing before dispatch --------------------------------------------------------

    async def route_first(self, tx: Transaction, record: EmergencyRecord, now: datetime) -> bool:
        """Record the emergency as undecided and route it once committed; False when there is no
        router (handle at once) [FED-012]."""
        if self.router is None or ids.center_of(record.name) != self.center:
            return False
        await tx.execute(
            "INSERT OR IGNORE INTO emergency_routing (name, raised_time, decision) VALUES (?, ?, '')",
            (record.name, to_rfc3339(now)),
        )
        snapshot = E.Emergency()
        snapshot.CopyFrom(record.emergency)
        tx.on_commit(lambda: self._start_route(snapshot))
        return True

    def _start_route(self, emergency: emergency_pb2.Emergency) -> None:
        self._routing.add(emergency.name)
        router = self.router
        if router is not None:
            self._spawn(router.route(emergency), f"ansim-sos-route-{emergency.name}")

    async def undecided(self, db: Any, name: str) -> bool:
        row = await db.fetchone("SELECT decision FROM emergency_routing WHERE name = ?", (name,))
        return row is not None and row["decision"] == ""

    async def _decide(self, tx: Transaction, name: str, decision: str) -> bool:
        """Take the routing decision once; a forward may still follow a fallback [FED-015], and a
        handoff local handling [FED-019]."""
        row = await tx.fetchone("SELECT decision FROM emergency_routing WHERE name = ?", (name,))
        current = row["decision"] if row is not None else ""
        if current and not (decision == "forwarded" and current in ("fallback", "local")):
            return current == decision
        await tx.execute(
            "INSERT INTO emergency_routing (name, raised_time, decision) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET decision = excluded.decision",
            (name, to_rfc3339(tx.now), decision),
        )
        return True

    async def _handle(
        self,
        name: str,
        decision: str,
        prefer: Sequence[str],
        note: str = "",
        record_route: RouteWriter | None = None,
    ) -> None:
        async with self.store.transaction() as tx:
            if record_route is not None:  # federation's own rows, committed with the decision
                await record_route(tx)
            record = await repository.load(tx, name)
            if record is None or not await self._decide(tx, name, decision):
                return
            if not states.is_active(record.state) or not self.domain.handles(record.emergency):
                return
            if note:
                record.emergency.status_note = note[:500]
            await self.domain.handle_here(tx, record, tx.now, prefer)
            await repository.save(tx, record)
        log.info("handled here", extra={"emergency": name, "decision": decision})

    async def handle_locally(self, emergency: str, *, record_route: RouteWriter | None = None) -> None:
        await self._handle(emergency, "local", (), record_route=record_route)

    async def handle_fallback(
        self,
        emergency: str,
        responsible: directory_pb2.CenterEntry | None,
        agencies: Sequence[directory_pb2.ServingAgency],
        *,
        record_route: RouteWriter | None = None,
    ) -> None:
        """Handle it here within 5 s, showing the responsible center's operations contact [FED-014]."""
        note = "FALLBACK: no responsible center reachable"
        if responsible is not None:
            contacts = [
                f"{c.display_name} {c.phone}".strip()
                for c in responsible.contacts
                if c.kind == directory_pb2.CENTER_CONTACT_KIND_OPERATIONS
            ]
            note = f"FALLBACK: {responsible.display_name_ko or responsible.name} unreachable"
            if contacts:
                note += f"; operations {', '.join(contacts)}"
        await self._handle(emergency, "fallback", [a.agency for a in agencies], note, record_route)

    async def forward_accepted(self, emergency: str, handling_emergency: str, display_name: str) -> None:
        async with self.store.transaction() as tx:
            record = await repository.load(tx, emergency)
            if record is None or not await self._decide(tx, emergency, "forwarded"):
                return
            now = tx.now
            await self._supersede(tx, record, now)
            video = self.ctx.domain.video
            if video is not None:
                revocation = camera_pb2.VIDEO_GRANT_REVOCATION_REASON_HANDOFF
                await video.revoke_for_emergency(tx, emergency, revocation)
            await self._set_handling(tx, record, _center(handling_emergency), display_name, now)
            await repository.save(tx, record)
            e = record.emergency
            router = self.router
            if router is not None and e.HasField("last_location"):
                latest = [e.last_location]
                tx.on_commit(
                    lambda: self._spawn(router.relay_locations(emergency, latest), "ansim-sos-relay")
                )
            if router is not None and not record.reporter_active:  # cancelled while routing [FED-018]
                duress = e.duress
                reason = int(
                    record.reporter_frozen.cancel_reason if record.reporter_frozen else e.cancel_reason
                )
                if duress or e.state == E.EMERGENCY_STATE_CANCELLED:
                    tx.on_commit(
                        lambda: self._spawn(
                            router.cancelled(emergency, duress=duress, user_cancel_reason=reason),
                            "ansim-sos-cancel",
                        )
                    )

    async def prior_dispatches(self, emergency: str) -> list[federation_pb2.ForwardedDispatch]:
        return [_forwarded_dispatch(d) for d in await dispatches.of_emergency(self.store, emergency)]

    def relay(self, tx: Transaction, record: EmergencyRecord, fix: common_pb2.Location) -> None:
        """Pass a fix of an emergency raised here to federation: relayed within 2 s when handled
        elsewhere [FED-016], watched for a handoff when handled here [FED-019]."""
        router = self.router
        if router is None or ids.center_of(record.name) != self.center:
            return
        name = record.name
        tx.on_commit(lambda: self._spawn(router.relay_locations(name, [fix]), "ansim-sos-relay"))

    def cancelled(self, tx: Transaction, record: EmergencyRecord, *, duress: bool, reason: int) -> None:
        """Tell the handling center of a cancel at home (federation ignores emergencies it did not
        forward) [FED-018]."""
        router = self.router
        if router is None or ids.center_of(record.name) != self.center:
            return
        name = record.name
        tx.on_commit(
            lambda: self._spawn(
                router.cancelled(name, duress=duress, user_cancel_reason=reason), "ansim-sos-cancel"
            )
        )

    async def tick(self, now: datetime) -> None:
        """Restart routing lost by a restart; handle here what got no decision in time [FED-014]."""
        if self.router is None or time.monotonic() - self._last_scan < SCAN_EVERY_S:
            return
        self._last_scan = time.monotonic()
        rows = await self.store.fetchall(
            "SELECT name, raised_time FROM emergency_routing WHERE decision = ''"
        )
        for row in rows:
            name = row["name"]
            record = await repository.load(self.store, name)
            if record is None or not states.is_active(record.state):
                async with self.store.transaction() as tx:
                    await self._decide(tx, name, "ended")
                continue
            if name not in self._routing:
                log.warning("routing restarted", extra={"emergency": name})
                self._start_route(record.emergency)
            elif now - from_rfc3339(row["raised_time"]) > WATCHDOG:
                log.warning("no routing decision in time: handling here", extra={"emergency": name})
                await self._handle(name, "fallback", (), "FALLBACK: routing gave no answer in time")

    # --- handled here for another home center ---------------------------------------------------------

    async def handle_forwarded(
        self,
        tx: SqliteTransaction,
        name: str,
        forwarded: federation_pb2.ForwardedEmergency,
        reason: int,
        agencies: Sequence[directory_pb2.ServingAgency],
    ) -> None:
        """As if raised here: stored, cameras, dispatch to this center's agencies [FED-007, FED-022]."""
        now = tx.now
        e = E.Emergency(
            name=name,
            incident_id=forwarded.incident_id,
            kind=forwarded.kind,
            nature=forwarded.nature,
            state=E.EMERGENCY_STATE_RAISED,
            mode=forwarded.mode,
            home_center=_center(forwarded.home_emergency),
            handling_center=self.center,
            create_time=timestamp(now),
            update_time=timestamp(now),
            raise_time=forwarded.raise_time,
            duress=forwarded.duress,
            last_location=forwarded.location,
        )
        if forwarded.HasField("address"):
            e.civic_address.CopyFrom(forwarded.address)
            if forwarded.address.legal_dong_code:
                e.region.legal_dong_sigungu_code = forwarded.address.legal_dong_code[:5]
        if forwarded.HasField("profile"):
            e.profile.CopyFrom(forwarded.profile)
        if forwarded.details:
            e.status_note = forwarded.details[:500]
        fixes = sorted(
            [*forwarded.track, forwarded.location], key=lambda f: (f.fix_time.seconds, f.fix_time.nanos)
        )
        e.location_summary.fix_count = len(fixes)
        e.location_summary.first_fix_time.CopyFrom(fixes[0].fix_time)
        e.location_summary.last_fix_time.CopyFrom(forwarded.location.fix_time)
        e.location_summary.recent_fixes.extend(fixes[-20:])
        record = EmergencyRecord(emergency=e, reporter_key="")
        await repository.insert(tx, record)
        for fix in fixes:
            await repository.insert_fix(tx, name, None, fix, now)
        await events.publish_created(self.domain.publisher, tx, record, now)
        await self.domain.handle_here(tx, record, now, [a.agency for a in agencies])
        await repository.save(tx, record)
        label = common_pb2.Mode.Name(e.mode).removeprefix("MODE_")
        tx.on_commit(lambda: ACTIVE_EMERGENCIES.labels(center=self.center, mode=label).inc())

    async def mirror_dispatch(self, tx: Transaction, d: dispatch_pb2.Dispatch) -> None:
        router = self.router
        if router is not None and ids.center_of(d.emergency) == self.center:
            event = federation_pb2.MirrorEvent(dispatch=_forwarded_dispatch(d))
            await router.mirror(cast(SqliteTransaction, tx), d.emergency, event)

    async def mirror_state(self, tx: Transaction, record: EmergencyRecord) -> None:
        router = self.router
        if router is not None and record.state != E.EMERGENCY_STATE_TRANSFERRED:
            change = federation_pb2.HandlingStateChange(state=record.state)  # type: ignore[arg-type]
            await router.mirror(
                cast(SqliteTransaction, tx), record.name, federation_pb2.MirrorEvent(state_change=change)
            )

    async def forwarded_locations(
        self, tx: SqliteTransaction, name: str, locations: Sequence[common_pb2.Location]
    ) -> None:
        record = await repository.load(tx, name)
        if record is None or not states.is_active(record.state):
            return
        current = record.emergency.last_location.fix_time
        newer = [
            f for f in locations if (f.fix_time.seconds, f.fix_time.nanos) > (current.seconds, current.nanos)
        ]
        for fix in sorted(newer, key=lambda f: (f.fix_time.seconds, f.fix_time.nanos)):
            await self.domain._add_fix(tx, record, None, fix, tx.now)
        if newer:
            await repository.save(tx, record)

    async def forwarded_duress(self, tx: SqliteTransaction, name: str) -> None:
        """Flag it to operators and agencies; police dispatched; her phone never contacted [FED-018]."""
        record = await repository.load(tx, name)
        if record is None or not states.is_active(record.state) or record.emergency.duress:
            return
        e, now = record.emergency, tx.now
        e.duress = True
        e.duress_time.CopyFrom(timestamp(now))
        e.update_time.CopyFrom(timestamp(now))
        await events.publish(self.domain.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_DURESS_SIGNALLED, now)
        open_police = [
            d for d in await dispatches.of_emergency(tx, name, open_only=True) if d.agency_kind == POLICE
        ]
        if not open_police:
            await self.domain._dispatch(tx, record, POLICE, now)
        await self.domain.dispatch.refresh_summaries(tx, e, now)
        await repository.save(tx, record)

    async def handling_ended(
        self, tx: SqliteTransaction, name: str, state: int, transferred_to: str, cancel_reason: int = 0
    ) -> None:
        record = await repository.load(tx, name)
        if record is None or not states.is_active(record.state):
            return
        now = tx.now
        if state == E.EMERGENCY_STATE_TRANSFERRED:
            await self._supersede(tx, record, now)
            record.emergency.status_note = f"TRANSFERRED to {transferred_to}"[:500]
        else:
            if state == E.EMERGENCY_STATE_CANCELLED:  # the user's reason, as at home [FED-018]
                record.emergency.cancel_reason = cancel_reason or E.EMERGENCY_CANCEL_REASON_OTHER  # type: ignore[assignment]
            await self.domain._on_ended(tx, record, now)
        change = self.domain._set_state(tx, record, state, now)
        await events.publish(
            self.domain.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, state_change=change
        )
        await repository.save(tx, record)

    async def _supersede(self, tx: Transaction, record: EmergencyRecord, now: datetime) -> None:
        """Own open dispatches SUPERSEDED; their entries end [FED-015, FED-021]."""
        for d in await self.domain.dispatch.supersede_for_emergency(tx, record.name, now):
            await self.mirror_dispatch(tx, d)
            for entry in record.emergency.dispatched_agencies:
                if entry.dispatch == d.name:
                    entry.end_time.CopyFrom(timestamp(now))
                    await events.publish(
                        self.domain.publisher,
                        tx,
                        record,
                        E.EMERGENCY_EVENT_TYPE_DISPATCH_UPDATED,
                        now,
                        dispatch=entry,
                    )

    # --- the home emergency follows the handling center ----------------------------------------------

    async def _set_handling(
        self, tx: Transaction, record: EmergencyRecord, center: str, display_name: str, now: datetime
    ) -> None:
        e = record.emergency
        if e.handling_center == center:
            return
        change = E.HandlingCenterChange(
            previous_center=e.handling_center or self.center,
            handling_center=center,
            center_display_name=display_name[:100],
        )
        e.handling_center = center
        e.update_time.CopyFrom(timestamp(now))
        await self._publish(
            tx, record, E.EMERGENCY_EVENT_TYPE_HANDLING_CENTER_CHANGED, now, handling_change=change
        )
        log.info("handling center changed", extra={"emergency": e.name, "handling_center": center})

    async def _publish(
        self,
        tx: Transaction,
        record: EmergencyRecord,
        type: int,
        now: datetime,
        *,
        handling_change: emergency_pb2.HandlingCenterChange | None = None,
        user_message: str = "",
    ) -> None:
        """Like :func:`events.publish`, for the two details it does not carry."""
        e = record.emergency

        def event(view: emergency_pb2.Emergency) -> emergency_pb2.EmergencyEvent:
            out = E.EmergencyEvent(event_time=timestamp(now), type=type, emergency=view)  # type: ignore[arg-type]
            if handling_change is not None:
                out.handling_change.CopyFrom(handling_change)
            if user_message:
                out.user_message = user_message
            return out

        publisher = self.domain.publisher
        await publisher.publish(tx, events.staff_scope(e.name), Event.of(event(e), e.mode, events.EVENT_TYPE))
        if record.reporter_key and record.reporter_active:
            mine = event(views.reporter_view(e))
            await publisher.publish(
                tx, events.reporter_scope(e.name), Event.of(mine, e.mode, events.EVENT_TYPE)
            )

    async def apply_mirror(
        self,
        tx: SqliteTransaction,
        home_emergency: str,
        handling_emergency: str,
        event: federation_pb2.MirrorEvent,
    ) -> None:
        """One mirrored event on the home emergency and the app's watch stream (§10.3, §17.7), in
        federation's transaction that records it applied [FED-024]."""
        record = await repository.load(tx, home_emergency)
        if record is None:
            return
        e, now = record.emergency, tx.now
        sender = _center(handling_emergency)
        kind = event.WhichOneof("event")
        if kind == "started":
            await self._decide(tx, home_emergency, "forwarded")
            if e.handling_center == self.center:
                await self._supersede(tx, record, now)
            await self._set_handling(tx, record, sender, event.started.center_display_name, now)
        elif kind == "dispatch":
            await self._mirror_dispatch(tx, record, event.dispatch, sender, now)
        elif kind == "state_change" and sender == e.handling_center:
            await self._follow_state(tx, record, event.state_change.state, now)
        elif kind == "location" and states.is_active(e.state):
            await self.domain._add_fix(tx, record, None, event.location, now)
        elif kind == "user_message" and record.reporter_active:
            await self._publish(
                tx, record, E.EMERGENCY_EVENT_TYPE_USER_MESSAGE, now, user_message=event.user_message
            )
        await repository.save(tx, record)

    async def _follow_state(
        self, tx: Transaction, record: EmergencyRecord, state: int, now: datetime
    ) -> None:
        """Mirrored states move the home emergency forward only; TRANSFERRED moves nothing [EMG-025]."""
        e = record.emergency
        if not states.is_active(e.state) or state in (
            E.EMERGENCY_STATE_TRANSFERRED,
            E.EMERGENCY_STATE_RAISED,
        ):
            return
        if state in states.TERMINAL:
            await self.domain._on_ended(tx, record, now)
        elif _ORDER.get(int(state), 0) <= _ORDER.get(int(e.state), 0):
            return
        change = self.domain._set_state(tx, record, state, now, note="mirrored from the handling center")
        await events.publish(
            self.domain.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, state_change=change
        )

    async def _mirror_dispatch(
        self,
        tx: Transaction,
        record: EmergencyRecord,
        d: federation_pb2.ForwardedDispatch,
        sender: str,
        now: datetime,
    ) -> None:
        e = record.emergency
        entry = next((a for a in e.dispatched_agencies if a.dispatch == d.dispatch), None)
        if entry is None:
            entry = e.dispatched_agencies.add(
                agency=d.agency, agency_kind=d.agency_kind, dispatch=d.dispatch, request_time=d.update_time
            )
        if d.state in (*_DISPATCHED, dispatch_pb2.DISPATCH_STATE_ON_SCENE) and not entry.HasField(
            "acknowledge_time"
        ):
            entry.acknowledge_time.CopyFrom(d.update_time)
        if d.HasField("eta_time"):
            entry.eta_time.CopyFrom(d.eta_time)
        if d.state == dispatch_pb2.DISPATCH_STATE_ON_SCENE and not entry.HasField("on_scene_time"):
            entry.on_scene_time.CopyFrom(d.update_time)
        terminal = (
            dispatch_pb2.DISPATCH_STATE_CLEARED,
            dispatch_pb2.DISPATCH_STATE_CLOSED,
            dispatch_pb2.DISPATCH_STATE_SUPERSEDED,
        )
        if d.state in terminal and not entry.HasField("end_time"):
            entry.end_time.CopyFrom(d.update_time)
        e.update_time.CopyFrom(timestamp(now))
        await events.publish(
            self.domain.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_DISPATCH_UPDATED, now, dispatch=entry
        )
        if sender != e.handling_center:
            return
        if d.state in _DISPATCHED:
            await self._follow_state(tx, record, E.EMERGENCY_STATE_DISPATCHED, now)
        elif d.state == dispatch_pb2.DISPATCH_STATE_ON_SCENE:
            await self._follow_state(tx, record, E.EMERGENCY_STATE_ON_SCENE, now)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _forwarded_dispatch(d: dispatch_pb2.Dispatch) -> federation_pb2.ForwardedDispatch:
    out = federation_pb2.ForwardedDispatch(
        dispatch=d.name, agency=d.agency, agency_kind=d.agency_kind, state=d.state, unit_id=d.unit_id[:64]
    )
    if d.HasField("eta_time"):
        out.eta_time.CopyFrom(d.eta_time)
    out.update_time.CopyFrom(d.update_time)
    return out
