"""The emergency use cases of spec §10, on top of the repository, the views and the publisher.

Every mutation runs in the caller's transaction (so the idempotency record, the rows, the outbox
events and the audit records commit together, EMG-001); reads run on the store's readers.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

from ansim.v1 import camera_pb2, common_pb2, dispatch_pb2, emergency_pb2, error_pb2

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from reference_server.config import DEMO_DISPATCH_TEST_ACK_DEADLINE
from reference_server.context import ServerContext
from reference_server.domain.dispatch import repository as dispatches
from reference_server.domain.dispatch.agencies import POLICE, AgencyDirectory, kinds_for
from reference_server.domain.dispatch.service import OFFICERS, DispatchDomain
from reference_server.domain.emergencies import duress, events, ids, repository, states
from reference_server.domain.emergencies.events import timestamp
from reference_server.domain.emergencies.geo import distance_m
from reference_server.domain.emergencies.repository import EmergencyRecord
from reference_server.domain.paging import PageTokens, page_size
from reference_server.interceptors.metrics import ACTIVE_EMERGENCIES
from reference_server.security.caller import Caller
from reference_server.store.interface import Transaction
from reference_server.store.sqlite import SqliteTransaction

log = logging.getLogger("ansim.emergency")
E = emergency_pb2
CAMERA_RADIUS_M = 1000.0
MAX_CAMERAS = 16
RECENT_FIXES = 20
MAX_FIX_AHEAD = timedelta(seconds=300)
REPORTER, STAFF = "reporter", "staff"
#: Idempotency records of fixes added by other areas (add_locations): caller and method.
INTAKE_CALLER, ADD_LOCATIONS = "system/emergency-intake", "AddLocations"


def _dt(ts: object) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined,no-any-return]


def _key(ts: object) -> tuple[int, int]:
    return (ts.seconds, ts.nanos)  # type: ignore[attr-defined]


def _mode_label(mode: int) -> str:
    return common_pb2.Mode.Name(mode).removeprefix("MODE_")  # type: ignore[arg-type]


def not_active(name: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_EMERGENCY_NOT_ACTIVE, f"{name} is no longer active")


class EmergencyDomain:
    """Emergencies of one center; also the EmergencyIntake port for the other areas."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.publisher = ctx.publisher
        self.center = ctx.settings.center_name
        self.agencies = AgencyDirectory(ctx.settings.agencies)
        self.pages = PageTokens.from_data_dir(ctx.settings.data_dir)
        timers = ctx.settings.timers
        demo_step = DEMO_DISPATCH_TEST_ACK_DEADLINE if ctx.demo_issuer is not None else None
        self.dispatch = DispatchDomain(
            ctx.store,
            ctx.publisher,
            self.agencies,
            timers.dispatch_ack_deadline,
            self.pages,
            test_ack_deadline=timers.dispatch_test_ack_deadline or demo_step,
        )
        self.dispatch.listener = self._on_dispatch_change
        from reference_server.domain.emergencies.federated import Federated

        #: Routing to and from other centers (spec §17); also the ForwardedEmergencyHandler port.
        self.federated = Federated(self)

    # --- who may see what ----------------------------------------------------------------------------

    async def _access(self, db: Transaction | None, record: EmergencyRecord, caller: Caller) -> str:
        """REPORTER or STAFF, or NOT_OWNER [EMG-030, SEC-011]."""
        if caller.role == common_pb2.ROLE_APP_USER:
            if record.is_reporter(caller.key):
                return REPORTER
        elif caller.role == common_pb2.ROLE_CENTER_OPERATOR:
            if caller.center == ids.center_of(record.name):
                return STAFF
        elif caller.role in OFFICERS:
            found = await dispatches.of_emergency(db if db is not None else self.store, record.name)
            if any(d.agency == caller.agency for d in found):
                return STAFF
        raise AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "the caller may not see this emergency")

    async def _load(self, db: Transaction | None, name: str) -> EmergencyRecord:
        record = await repository.load(db if db is not None else self.store, name)
        if record is None:
            raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{name} does not exist")
        return record

    @staticmethod
    def view(record: EmergencyRecord, who: str) -> emergency_pb2.Emergency:
        return events.reporter_view(record) if who == REPORTER else record.emergency

    async def _audit_officer_read(self, caller: Caller, name: str, action: str) -> None:
        if caller.role in OFFICERS:
            async with self.store.transaction() as tx:
                await tx.append_audit(caller.subject, action, name, "dispatch", "allowed")

    def handles(self, e: emergency_pb2.Emergency) -> bool:
        """Whether this center handles the emergency now (not forwarded or handed off) [EMG-025]."""
        return not e.handling_center or e.handling_center == self.center

    # --- state changes -------------------------------------------------------------------------------

    def _set_state(
        self,
        tx: Transaction,
        record: EmergencyRecord,
        state: int,
        now: datetime,
        actor: common_pb2.Subject | None = None,
        note: str = "",
    ) -> emergency_pb2.EmergencyStateChange:
        e = record.emergency
        change = E.EmergencyStateChange(previous_state=e.state, state=state, note=note)  # type: ignore[arg-type]
        if actor is not None:
            change.actor.CopyFrom(actor)
        was_active = states.is_active(e.state)
        e.state = state  # type: ignore[assignment]
        e.update_time.CopyFrom(timestamp(now))
        if state == E.EMERGENCY_STATE_RAISED and not e.HasField("raise_time"):
            e.raise_time.CopyFrom(timestamp(now))
        if state in states.TERMINAL:
            e.end_time.CopyFrom(timestamp(now))
        if was_active and not states.is_active(state):
            label = _mode_label(e.mode)
            tx.on_commit(lambda: ACTIVE_EMERGENCIES.labels(center=self.center, mode=label).dec())
        return change

    async def _select_cameras(self, tx: Transaction, record: EmergencyRecord, now: datetime) -> None:
        """Cameras nearest the current location within 1000 m, at most 16 [EMG-033]; for a bell, the
        bell pole's own cameras first [TAG-017]."""
        e = record.emergency
        lookup = self.ctx.domain.cameras
        pinned = await self._reader_cameras(e)
        found = (
            lookup.nearby(e.last_location.latitude, e.last_location.longitude, CAMERA_RADIUS_M, MAX_CAMERAS)
            if lookup is not None and e.HasField("last_location")
            else []
        )
        names = list(dict.fromkeys([*pinned, *(c.name for c in found)]))[:MAX_CAMERAS]
        old = list(e.selected_cameras)
        if names == old:
            return
        del e.selected_cameras[:]
        e.selected_cameras.extend(names)
        e.update_time.CopyFrom(timestamp(now))
        change = E.CameraSetChange(
            added=[n for n in names if n not in old], removed=[n for n in old if n not in names]
        )
        await events.publish(
            self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_CAMERAS_CHANGED, now, camera_change=change
        )

    async def _reader_cameras(self, e: emergency_pb2.Emergency) -> list[str]:
        """The cameras installed with the emergency's reader (child safety's registry), if any."""
        area = self.ctx.domain.extra.get("child_safety") if e.reader else None
        lookup = getattr(area, "reader_cameras", None)
        return list(await lookup(e.reader)) if lookup is not None else []

    async def _dispatch(
        self, tx: Transaction, record: EmergencyRecord, kind: int, now: datetime, prefer: Sequence[str] = ()
    ) -> None:
        d = await self.dispatch.create(tx, record.emergency, kind, now, prefer)
        if d is None:
            return
        await self.federated.mirror_dispatch(tx, d)
        entry = record.emergency.dispatched_agencies.add(
            agency=d.agency, agency_kind=d.agency_kind, dispatch=d.name, request_time=timestamp(now)
        )
        record.emergency.update_time.CopyFrom(timestamp(now))
        await events.publish(
            self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_DISPATCH_UPDATED, now, dispatch=entry
        )

    async def _on_raised(self, tx: Transaction, record: EmergencyRecord, now: datetime) -> None:
        """Routing first when federation runs (the decision calls :meth:`handle_here`), else at once
        [FED-012, EMG-033]."""
        if await self.federated.route_first(tx, record, now):
            return
        await self.handle_here(tx, record, now)

    async def handle_here(
        self, tx: Transaction, record: EmergencyRecord, now: datetime, prefer: Sequence[str] = ()
    ) -> None:
        """Cameras and dispatches without waiting for an operator [EMG-033, DSP-001]; ``prefer``: the
        agencies the directory lists for the location [FED-014]."""
        await self._select_cameras(tx, record, now)
        for kind in kinds_for(record.emergency.nature):
            await self._dispatch(tx, record, kind, now, prefer)

    async def _on_ended(self, tx: Transaction, record: EmergencyRecord, now: datetime) -> None:
        """Close dispatches, end video grants, forget the duress verifier [EMG-011, DSP-012, EMG-034]."""
        closed = {d.name: d for d in await self.dispatch.close_for_emergency(tx, record.name, now)}
        for d in closed.values():
            await self.federated.mirror_dispatch(tx, d)
        for entry in record.emergency.dispatched_agencies:
            if entry.dispatch in closed:
                entry.end_time.CopyFrom(timestamp(now))
                await events.publish(
                    self.publisher,
                    tx,
                    record,
                    E.EMERGENCY_EVENT_TYPE_DISPATCH_UPDATED,
                    now,
                    dispatch=entry,
                    to_reporter=False,
                )
        video = self.ctx.domain.video
        if video is not None:
            reason = camera_pb2.VIDEO_GRANT_REVOCATION_REASON_EMERGENCY_ENDED
            await video.revoke_for_emergency(cast(SqliteTransaction, tx), record.name, reason)
        record.duress_salt = record.duress_digest = None

    async def _on_dispatch_change(self, tx: Transaction, d: dispatch_pb2.Dispatch, now: datetime) -> None:
        """Mirror an agency's progress on the emergency [EMG-018, EMG-026]."""
        record = await repository.load(tx, d.emergency)
        if record is None:
            return
        e = record.emergency
        entry = next((a for a in e.dispatched_agencies if a.dispatch == d.name), None)
        if entry is None:
            return
        await self.federated.mirror_dispatch(tx, d)
        before = entry.SerializeToString(deterministic=True)
        if d.HasField("acknowledge_time"):
            entry.acknowledge_time.CopyFrom(d.acknowledge_time)
        if d.HasField("eta_time"):
            entry.eta_time.CopyFrom(d.eta_time)
        if d.state == dispatch_pb2.DISPATCH_STATE_ON_SCENE and not entry.HasField("on_scene_time"):
            entry.on_scene_time.CopyFrom(timestamp(now))
        if d.HasField("end_time"):
            entry.end_time.CopyFrom(d.end_time)
        if entry.SerializeToString(deterministic=True) != before:
            e.update_time.CopyFrom(timestamp(now))
            await events.publish(
                self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_DISPATCH_UPDATED, now, dispatch=entry
            )
        target = None
        if d.state == dispatch_pb2.DISPATCH_STATE_ACKNOWLEDGED and e.state in (
            E.EMERGENCY_STATE_RAISED,
            E.EMERGENCY_STATE_ACKNOWLEDGED,
        ):
            target = E.EMERGENCY_STATE_DISPATCHED
        elif d.state == dispatch_pb2.DISPATCH_STATE_ON_SCENE and e.state == E.EMERGENCY_STATE_DISPATCHED:
            target = E.EMERGENCY_STATE_ON_SCENE
        if target is not None:
            change = self._set_state(tx, record, target, now)
            await self.federated.mirror_state(tx, record)
            await events.publish(
                self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, state_change=change
            )
        await repository.save(tx, record)

    # --- location ------------------------------------------------------------------------------------

    async def _add_fix(
        self,
        tx: Transaction,
        record: EmergencyRecord,
        sequence: int | None,
        fix: common_pb2.Location,
        now: datetime,
    ) -> int:
        """Store a fix and make it current when it is the latest by fix_time [EMG-019, LOC-004]."""
        e = record.emergency
        await repository.insert_fix(tx, e.name, sequence, fix, now)
        summary = e.location_summary
        summary.fix_count += 1
        if not summary.HasField("first_fix_time") or _key(fix.fix_time) < _key(summary.first_fix_time):
            summary.first_fix_time.CopyFrom(fix.fix_time)
        newest = not e.HasField("last_location") or _key(fix.fix_time) >= _key(e.last_location.fix_time)
        if newest:
            if e.HasField("last_location"):
                summary.path_length_m += distance_m(
                    e.last_location.latitude, e.last_location.longitude, fix.latitude, fix.longitude
                )
            summary.last_fix_time.CopyFrom(fix.fix_time)
            e.last_location.CopyFrom(fix)
            summary.recent_fixes.append(fix)
            if len(summary.recent_fixes) > RECENT_FIXES:
                del summary.recent_fixes[: len(summary.recent_fixes) - RECENT_FIXES]
        else:
            ordered = await repository.fixes_in_time_order(tx, e.name)
            summary.path_length_m = sum(
                distance_m(a.latitude, a.longitude, b.latitude, b.longitude)
                for a, b in itertools.pairwise(ordered)
            )
            del summary.recent_fixes[:]
            summary.recent_fixes.extend(ordered[-RECENT_FIXES:])
        e.update_time.CopyFrom(timestamp(now))
        await events.publish(
            self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_LOCATION_UPDATED, now, location=fix
        )
        if newest and e.state in states.ACTIVE and e.state != E.EMERGENCY_STATE_PENDING and self.handles(e):
            await self._select_cameras(tx, record, now)
            await self.dispatch.refresh_summaries(tx, e, now)
        return E.LOCATION_ACK_STATUS_ACCEPTED if newest else E.LOCATION_ACK_STATUS_ACCEPTED_OLDER

    async def accept_fix(
        self, name: str, sequence: int, fix: common_pb2.Location, caller: Caller
    ) -> emergency_pb2.LocationAck:
        """One StreamLocation item: stored before it is acknowledged [EMG-001, EMG-020, EMG-021]."""
        async with self.store.transaction() as tx:
            now = tx.now
            record = await self._load(tx, name)
            if await self._access(tx, record, caller) != REPORTER:
                raise AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "only the reporter streams her location")
            if not states.is_active(record.state):
                raise not_active(name)  # after a duress cancel the true state stays active [EMG-015]
            current = record.emergency.last_location
            if await repository.fix_stored(tx, name, sequence):
                ack = E.LocationAck(sequence=sequence, status=E.LOCATION_ACK_STATUS_DUPLICATE)
                if record.emergency.HasField("last_location"):
                    ack.current_fix_time.CopyFrom(current.fix_time)
                return ack
            if _dt(fix.fix_time) > now + MAX_FIX_AHEAD:
                error = InvalidArgument(
                    [
                        FieldViolation(
                            "location.fix_time",
                            "fix_time lies more than 300 s ahead of the center's clock",
                            "EMG-021",
                        )
                    ]
                )
                return E.LocationAck(
                    sequence=sequence, status=E.LOCATION_ACK_STATUS_REJECTED, error=error.to_status_proto()
                )
            status = await self._add_fix(tx, record, sequence, fix, now)
            await repository.save(tx, record)
            self.federated.relay(tx, record, fix)
            ack = E.LocationAck(sequence=sequence, status=status)  # type: ignore[arg-type]
            ack.current_fix_time.CopyFrom(record.emergency.last_location.fix_time)
            return ack

    # --- RaiseEmergency ------------------------------------------------------------------------------

    async def raise_emergency(
        self, tx: Transaction, request: emergency_pb2.RaiseEmergencyRequest, caller: Caller
    ) -> emergency_pb2.Emergency:
        now = tx.now
        if request.parent != self.center:
            raise AnsimError(
                error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{request.parent} is not this center"
            )
        existing = await repository.find_active_for_reporter(tx, caller.key, request.mode)
        if existing is not None:  # a second press while active: same emergency, new fix [EMG-004]
            await self._add_fix(tx, existing, None, request.location, now)
            await repository.save(tx, existing)
            self.federated.relay(tx, existing, request.location)
            return events.reporter_view(existing)
        countdown = request.countdown.ToTimedelta() if request.HasField("countdown") else timedelta(0)
        e = E.Emergency(
            name=f"{self.center}/emergencies/{ids.new_id('e')}",
            incident_id=ids.ulid(now),
            kind=request.kind,
            nature=request.nature,
            state=E.EMERGENCY_STATE_PENDING if countdown > timedelta(0) else E.EMERGENCY_STATE_RAISED,
            mode=request.mode,
            reporter=caller.to_subject(),
            home_center=request.home_center or self.center,
            handling_center=self.center,
            create_time=timestamp(now),
            update_time=timestamp(now),
        )
        if request.HasField("civic_address"):
            e.civic_address.CopyFrom(request.civic_address)
            if request.civic_address.legal_dong_code:
                e.region.legal_dong_sigungu_code = request.civic_address.legal_dong_code[:5]
        if request.HasField("profile"):
            e.profile.CopyFrom(request.profile)
        if countdown > timedelta(0):
            e.countdown_end_time.CopyFrom(timestamp(now + countdown))
        else:
            e.raise_time.CopyFrom(timestamp(now))
        record = EmergencyRecord(emergency=e, reporter_key=caller.key)
        if request.HasField("duress_verifier"):
            record.duress_salt = request.duress_verifier.salt
            record.duress_digest = request.duress_verifier.duress_digest
        await self._create(tx, record, request.location, now)
        return events.reporter_view(record)

    async def _create(
        self, tx: Transaction, record: EmergencyRecord, fix: common_pb2.Location, now: datetime
    ) -> None:
        e = record.emergency
        e.last_location.CopyFrom(fix)
        e.location_summary.fix_count = 1
        e.location_summary.first_fix_time.CopyFrom(fix.fix_time)
        e.location_summary.last_fix_time.CopyFrom(fix.fix_time)
        e.location_summary.recent_fixes.append(fix)
        await repository.insert(tx, record)
        await repository.insert_fix(tx, e.name, None, fix, now)
        await events.publish_created(self.publisher, tx, record, now)
        if e.state == E.EMERGENCY_STATE_RAISED:
            await self._on_raised(tx, record, now)
            await repository.save(tx, record)
        label = _mode_label(e.mode)
        tx.on_commit(lambda: ACTIVE_EMERGENCIES.labels(center=self.center, mode=label).inc())

    # --- the EmergencyIntake port --------------------------------------------------------------------

    async def raise_from_system(
        self,
        *,
        kind: int,
        mode: int,
        location: common_pb2.Location,
        idempotency_key: str,
        origin: str,
        description: str,
        reporter: common_pb2.Subject | None = None,
        profile: emergency_pb2.ConsentedProfile | None = None,
        duress: bool = False,
    ) -> emergency_pb2.Emergency:
        async with self.store.transaction() as tx:
            existing = await repository.find_by_system_key(tx, idempotency_key)
            if existing is not None:
                return existing.emergency
            now = tx.now
            e = E.Emergency(
                name=f"{self.center}/emergencies/{ids.new_id('e')}",
                incident_id=ids.ulid(now),
                kind=kind,  # type: ignore[arg-type]
                state=E.EMERGENCY_STATE_RAISED,
                mode=mode,  # type: ignore[arg-type]
                home_center=self.center,
                handling_center=self.center,
                create_time=timestamp(now),
                update_time=timestamp(now),
                raise_time=timestamp(now),
                status_note=description[:500],
            )
            if "/safeTrips/" in origin:
                e.safe_trip = origin
            elif "/wards/" in origin:
                e.ward = origin
            elif "/readers/" in origin:
                e.reader = origin
            if reporter is not None:  # shown to staff; the person reaches it only through its source
                e.reporter.CopyFrom(reporter)
            if profile is not None:
                e.profile.CopyFrom(profile)
            if duress:  # as after a duress cancel [EMG-013]; police is among the kinds of every raise
                e.duress = True
                e.duress_time.CopyFrom(timestamp(now))
            record = EmergencyRecord(emergency=e, reporter_key="", system_key=idempotency_key)
            await self._create(tx, record, location, now)
            if duress:
                await events.publish(self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_DURESS_SIGNALLED, now)
                log.warning("duress emergency raised", extra={"emergency": e.name})
            return record.emergency

    async def add_locations(
        self, emergency: str, locations: Sequence[common_pb2.Location], idempotency_key: str
    ) -> None:
        """Fixes received by another area for the emergency (a safe trip's, TRIP-013, TRIP-018), added
        as if streamed [EMG-019]; a repeated ``idempotency_key`` adds nothing again."""
        if not locations:
            return
        digest = hashlib.sha256(b"".join(f.SerializeToString(deterministic=True) for f in locations)).digest()
        method = f"{ADD_LOCATIONS} {emergency}"
        async with self.store.transaction() as tx:
            if await tx.idempotency_lookup(INTAKE_CALLER, method, idempotency_key, digest) is not None:
                return
            record = await repository.load(tx, emergency)
            if record is None or not states.is_active(record.state):
                return
            for fix in locations:
                await self._add_fix(tx, record, None, fix, tx.now)
            await repository.save(tx, record)
            await tx.idempotency_record(INTAKE_CALLER, method, idempotency_key, digest, b"")

    async def ensure_dispatched(self, name: str) -> bool:
        """GRD-007: a dispatch to the police 112 agency of the emergency's location has been requested,
        now if never before; False when the emergency is unknown, ended, handled by another center
        or no police agency is configured."""
        async with self.store.transaction() as tx:
            record = await repository.load(tx, name)
            if record is None or not states.is_active(record.state):
                return False
            e = record.emergency
            if e.handling_center and e.handling_center != self.center:
                return False  # the handling center dispatches [EMG-025]
            if any(a.agency_kind == POLICE for a in e.dispatched_agencies):
                return True
            await self._dispatch(tx, record, POLICE, tx.now)
            await repository.save(tx, record)
            log.info("police dispatch requested at the POLICE_112 rung", extra={"emergency": name})
            return any(a.agency_kind == POLICE for a in e.dispatched_agencies)

    async def get(self, name: str) -> emergency_pb2.Emergency | None:
        record = await repository.load(self.store, name)
        return record.emergency if record is not None else None

    async def acknowledged_agencies(self, emergency: str) -> frozenset[str]:
        acked = (
            dispatch_pb2.DISPATCH_STATE_ACKNOWLEDGED,
            dispatch_pb2.DISPATCH_STATE_EN_ROUTE,
            dispatch_pb2.DISPATCH_STATE_ON_SCENE,
        )
        return frozenset(
            d.agency for d in await dispatches.of_emergency(self.store, emergency) if d.state in acked
        )

    # --- reads ---------------------------------------------------------------------------------------

    async def get_for(self, name: str, caller: Caller) -> emergency_pb2.Emergency:
        record = await self._load(None, name)
        who = await self._access(None, record, caller)
        await self._audit_officer_read(caller, name, "emergency.location.read")
        return self.view(record, who)

    async def list(
        self, request: emergency_pb2.ListEmergenciesRequest, caller: Caller
    ) -> emergency_pb2.ListEmergenciesResponse:
        if caller.center != request.parent:
            raise AnsimError(
                error_pb2.ERROR_REASON_NOT_OWNER, "operators list only their own center's emergencies"
            )
        if request.parent != self.center:
            raise AnsimError(
                error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{request.parent} is not this center"
            )
        states_filter = sorted({int(s) for s in request.states})
        kinds = sorted({int(k) for k in request.kinds})
        filters = f"{request.parent}|{states_filter}|{request.mode}|{kinds}|{request.incident_id}"
        after = self.pages.decode_pair("emergencies", filters, request.page_token)
        size = page_size(request.page_size)
        records = await repository.list_page(
            self.store,
            request.parent,
            states=states_filter,
            mode=request.mode,
            kinds=kinds,
            incident_id=request.incident_id,
            after=after,
            limit=size + 1,
        )
        response = E.ListEmergenciesResponse(emergencies=[r.emergency for r in records[:size]])
        if len(records) > size:
            last = records[size - 1].emergency
            from reference_server.clock import to_rfc3339

            response.next_page_token = self.pages.encode(
                "emergencies", filters, (to_rfc3339(_dt(last.create_time)), last.name)
            )
        return response

    async def watch(
        self, name: str, resume_cursor: str, caller: Caller
    ) -> AsyncIterator[emergency_pb2.EmergencyEvent]:
        """SNAPSHOT then changes, or the changes after a cursor; ends OK once terminal in the
        subscriber's view [EMG-023, EMG-024, STM-001..003]."""
        record = await self._load(None, name)
        who = await self._access(None, record, caller)
        await self._audit_officer_read(caller, name, "emergency.location.watch")
        scope = events.reporter_scope(name) if who == REPORTER else events.staff_scope(name)
        loaded = await repository.load_with_sequence(self.store, name, scope)
        assert loaded is not None
        record, last = loaded
        view = self.view(record, who)
        cursor = resume_cursor
        if not resume_cursor:
            yield E.EmergencyEvent(
                cursor=self.publisher.cursor(scope, last),
                sequence=last,
                replay=True,
                event_time=timestamp(self.ctx.clock.now()),
                type=E.EMERGENCY_EVENT_TYPE_SNAPSHOT,
                emergency=view,
            )
            if view.state in states.TERMINAL:
                return
            cursor = self.publisher.cursor(scope, last)
        elif view.state in states.TERMINAL and resume_cursor == self.publisher.cursor(scope, last):
            return
        subscription = self.publisher.subscribe(scope, cursor)
        try:
            async for delivered in subscription:
                event = E.EmergencyEvent.FromString(delivered.payload)
                event.cursor = delivered.cursor
                event.sequence = delivered.sequence
                yield event
                if (
                    event.type == E.EMERGENCY_EVENT_TYPE_STATE_CHANGED
                    and event.emergency.state in states.TERMINAL
                ):
                    return
        finally:
            await subscription.aclose()

    # --- CancelEmergency -----------------------------------------------------------------------------

    async def cancel(
        self, tx: Transaction, request: emergency_pb2.CancelEmergencyRequest, caller: Caller
    ) -> emergency_pb2.Emergency:
        now = tx.now
        record = await self._load(tx, request.name)
        if await self._access(tx, record, caller) != REPORTER:
            raise AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "only the reporter cancels her emergency")
        if not record.reporter_active:
            raise not_active(request.name)
        if request.code and duress.matches(record.duress_salt, record.duress_digest, request.code):
            return await self._duress_cancel(tx, record, request, caller, now)
        await self._on_ended(tx, record, now)
        change = self._set_state(
            tx, record, E.EMERGENCY_STATE_CANCELLED, now, caller.to_subject(), request.note
        )
        record.emergency.cancel_reason = request.reason
        await events.publish(
            self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, state_change=change
        )
        await repository.save(tx, record)
        self.federated.cancelled(tx, record, duress=False, reason=request.reason)
        return events.reporter_view(record)

    async def _duress_cancel(
        self,
        tx: Transaction,
        record: EmergencyRecord,
        request: emergency_pb2.CancelEmergencyRequest,
        caller: Caller,
        now: datetime,
    ) -> emergency_pb2.Emergency:
        """The phone sees a normal cancel; the incident goes on for everyone else [EMG-012, EMG-013]."""
        e = record.emergency
        frozen = events.reporter_view(record)
        previous = frozen.state
        frozen.state = E.EMERGENCY_STATE_CANCELLED
        frozen.cancel_reason = request.reason
        frozen.end_time.CopyFrom(timestamp(now))
        frozen.update_time.CopyFrom(timestamp(now))
        for entry in frozen.dispatched_agencies:  # what a normal cancel's closing would show
            if not entry.HasField("end_time"):
                entry.end_time.CopyFrom(timestamp(now))
        record.reporter_frozen = frozen
        change = E.EmergencyStateChange(previous_state=previous, state=E.EMERGENCY_STATE_CANCELLED)
        await events.publish_to_reporter(
            self.publisher, tx, e.name, e.mode, frozen, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, change
        )
        if e.state == E.EMERGENCY_STATE_PENDING:
            raised = self._set_state(tx, record, E.EMERGENCY_STATE_RAISED, now)
            await events.publish(
                self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, state_change=raised
            )
            await self._on_raised(tx, record, now)
        e.duress = True
        e.duress_time.CopyFrom(timestamp(now))
        e.update_time.CopyFrom(timestamp(now))
        await events.publish(self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_DURESS_SIGNALLED, now)
        open_police = [
            d for d in await dispatches.of_emergency(tx, e.name, open_only=True) if d.agency_kind == POLICE
        ]
        if not open_police and self.handles(e) and not await self.federated.undecided(tx, e.name):
            await self._dispatch(tx, record, POLICE, now)
        await self.dispatch.refresh_summaries(tx, e, now)
        await repository.save(tx, record)
        self.federated.cancelled(tx, record, duress=True, reason=request.reason)
        log.warning("duress cancel received", extra={"emergency": e.name})
        return frozen

    # --- UpdateEmergencyState ------------------------------------------------------------------------

    async def update_state(
        self, tx: Transaction, request: emergency_pb2.UpdateEmergencyStateRequest, caller: Caller
    ) -> emergency_pb2.Emergency:
        now = tx.now
        record = await self._load(tx, request.name)
        e = record.emergency
        await self._access(tx, record, caller)
        if caller.role in OFFICERS:
            if request.state in states.OFFICER_FORBIDDEN_TARGETS:
                raise AnsimError(
                    error_pb2.ERROR_REASON_ROLE_NOT_PERMITTED, "officers may only report ON_SCENE or RESOLVED"
                )
            acked = await self._acked(tx, e.name)
            if caller.agency not in acked:
                raise AnsimError(
                    error_pb2.ERROR_REASON_NOT_OWNER,
                    "the officer's agency has no acknowledged dispatch for it",
                )
        if not states.is_active(e.state):
            raise not_active(e.name)
        if e.handling_center and e.handling_center != self.center:
            raise AnsimError(error_pb2.ERROR_REASON_NOT_RESPONSIBLE, "another center handles this emergency")
        if not states.allowed(caller.role, e.state, request.state):
            raise AnsimError(
                error_pb2.ERROR_REASON_INVALID_STATE_TRANSITION,
                f"{E.EmergencyState.Name(e.state)} cannot move to {E.EmergencyState.Name(request.state)}"
                " by this caller",
            )
        if request.state in states.TERMINAL:
            await self._on_ended(tx, record, now)
        change = self._set_state(tx, record, request.state, now, caller.to_subject(), request.note)
        e.status_note = request.note
        if request.state == E.EMERGENCY_STATE_CANCELLED:
            e.cancel_reason = E.EMERGENCY_CANCEL_REASON_FALSE_ALARM
        await events.publish(
            self.publisher, tx, record, E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, now, state_change=change
        )
        await repository.save(tx, record)
        await self.federated.mirror_state(tx, record)
        return e

    async def _acked(self, tx: Transaction, emergency: str) -> frozenset[str]:
        acked = (
            dispatch_pb2.DISPATCH_STATE_ACKNOWLEDGED,
            dispatch_pb2.DISPATCH_STATE_EN_ROUTE,
            dispatch_pb2.DISPATCH_STATE_ON_SCENE,
            dispatch_pb2.DISPATCH_STATE_CLEARED,
        )
        return frozenset(d.agency for d in await dispatches.of_emergency(tx, emergency) if d.state in acked)

    # --- the countdown timer -------------------------------------------------------------------------

    async def tick(self, now: datetime) -> None:
        """PENDING → RAISED at countdown_end_time [EMG-009]."""
        for name in await repository.due_countdowns(self.store, now):
            async with self.store.transaction() as tx:
                record = await repository.load(tx, name)
                if record is None or record.state != E.EMERGENCY_STATE_PENDING:
                    continue
                if _dt(record.emergency.countdown_end_time) > tx.now:
                    continue
                change = self._set_state(tx, record, E.EMERGENCY_STATE_RAISED, tx.now)
                await events.publish(
                    self.publisher,
                    tx,
                    record,
                    E.EMERGENCY_EVENT_TYPE_STATE_CHANGED,
                    tx.now,
                    state_change=change,
                )
                await self._on_raised(tx, record, tx.now)
                await repository.save(tx, record)
        await self.federated.tick(now)

    async def init_metrics(self) -> None:
        for mode, count in (await repository.active_counts(self.store)).items():
            ACTIVE_EMERGENCIES.labels(center=self.center, mode=_mode_label(mode)).set(count)


__all__ = ["AgencyDirectory", "EmergencyDomain"]
