"""Safe-trip behaviour (spec §11): the rpcs' domain logic, alerts, guardians and escalation.

Every change of a trip is one transaction that writes the trip, appends its event to the trip's
scope (``{trip}/events``) through the publisher and, where the spec asks, an audit record. Raising an
emergency goes through ``ctx.domain.emergencies`` (the emergency area), which runs its own
transaction; it is therefore called *outside* the trip's transaction, with an idempotency key per
trip so that a retry, the scheduler and ESCALATE_NOW all end up with the same emergency.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import uuid
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from ansim.v1 import common_pb2, emergency_pb2, error_pb2, safe_trip_pb2

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from reference_server.clock import to_rfc3339
from reference_server.context import ServerContext
from reference_server.domain.safe_trip import model, notify
from reference_server.domain.safe_trip.geometry import outside_corridor
from reference_server.domain.safe_trip.model import TripRecord, moment, stamp
from reference_server.domain.safe_trip.timers import TripTimerConfig
from reference_server.domain.safe_trip.views import require_reader, require_traveler, view
from reference_server.events.publisher import Event
from reference_server.security.caller import Caller
from reference_server.store.idempotency import idempotent
from reference_server.store.interface import Transaction

log = logging.getLogger("ansim.safe_trip")

S = safe_trip_pb2
E = error_pb2
MAX_TRIP = timedelta(hours=12)
LOCATION_EVENT_INTERVAL = timedelta(seconds=10)
SERVICE = "/ansim.v1.SafeTripService/"
#: ``duress_emergency`` while the silent emergency is being raised.
DURESS_PENDING = "pending"
#: Audit identity of the center's own actions on trips (scheduler, escalation).
SYSTEM_ACTOR = "system/safe-trip"


def scope(trip: str) -> str:
    """Publisher scope of one trip's events."""
    return f"{trip}/events"


class LocationSink(Protocol):
    """Optional method of the emergency port: add fixes to an emergency as if streamed (TRIP-018)."""

    async def add_locations(
        self, emergency: str, locations: list[common_pb2.Location], idempotency_key: str
    ) -> None: ...


def _not_found(name: str) -> AnsimError:
    return AnsimError(E.ERROR_REASON_RESOURCE_NOT_FOUND, f"no safe trip {name}")


def _not_active(record: TripRecord) -> AnsimError:
    state = S.SafeTripState.Name(record.trip.state).removeprefix("SAFE_TRIP_STATE_")
    return AnsimError(E.ERROR_REASON_TRIP_NOT_ACTIVE, f"the safe trip is {state}, no longer active")


def _transition(message: str) -> AnsimError:
    return AnsimError(E.ERROR_REASON_INVALID_STATE_TRANSITION, message)


def duress_matches(verifier: bytes | None, code: str) -> bool:
    """SHA-256(salt ‖ code) equals the registered digest (spec §10.8), compared in constant time."""
    if not verifier or not code:
        return False
    parsed = emergency_pb2.DuressVerifier.FromString(verifier)
    digest = hashlib.sha256(parsed.salt + code.encode("utf-8")).digest()
    return hmac.compare_digest(digest, parsed.duress_digest)


class SafeTrips:
    """The safe-trip area of one center."""

    def __init__(self, ctx: ServerContext, timers: TripTimerConfig) -> None:
        self.ctx = ctx
        self.timers = timers
        self.center = ctx.settings.center_name
        self._tasks: set[asyncio.Future[None]] = set()

    # --- helpers ----------------------------------------------------------------------------------

    async def _load(self, q: model.Reader, name: str) -> TripRecord:
        record = await model.load(q, name)
        if record is None or record.center != self.center:
            raise _not_found(name)
        return record

    async def _publish(
        self,
        tx: Transaction,
        record: TripRecord,
        type: int,
        alert: safe_trip_pb2.TripAlert | None = None,
    ) -> None:
        event = S.SafeTripEvent(event_time=stamp(tx.now), type=type, safe_trip=record.trip)  # type: ignore[arg-type]
        if alert is not None:
            event.alert.CopyFrom(alert)
        await self.ctx.publisher.publish(tx, scope(record.name), Event.of(event, record.trip.mode))

    def _touch(self, tx: Transaction, record: TripRecord) -> None:
        record.trip.update_time.CopyFrom(stamp(tx.now))

    async def _open_alert(self, tx: Transaction, record: TripRecord, kind: int) -> None:
        """ACTIVE → ALERTING: tell every guardian now and set the escalation deadline (TRIP-007)."""
        trip = record.trip
        trip.state = S.SAFE_TRIP_STATE_ALERTING
        trip.active_alert.Clear()
        trip.active_alert.kind = kind  # type: ignore[assignment]
        trip.active_alert.detect_time.CopyFrom(stamp(tx.now))
        told = await notify.tell_guardians(tx, record, kind, self.ctx.settings.display_name)
        trip.active_alert.notify_time.CopyFrom(stamp(tx.now))
        trip.active_alert.notified_guardian_count = told
        delay = trip.timers.escalation_delay.ToTimedelta()
        trip.active_alert.escalate_time.CopyFrom(stamp(tx.now + delay))
        self._touch(tx, record)
        await model.save(tx, record)
        await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_ALERT_RAISED, trip.active_alert)
        log.info("trip alert", extra={"trip": trip.name, "kind": S.TripAlertKind.Name(kind)})  # type: ignore[arg-type]

    async def _clear_alert(
        self, tx: Transaction, record: TripRecord, *, save: bool = True, reset_route: bool = True
    ) -> None:
        """ALERTING → ACTIVE, ALERT_CLEARED with the closed alert. A person's clear (or extension)
        restarts off-route detection from the latest fix; ``reset_route=False`` keeps the fixes."""
        trip = record.trip
        alert = S.TripAlert()
        alert.CopyFrom(trip.active_alert)
        trip.ClearField("active_alert")
        trip.state = S.SAFE_TRIP_STATE_ACTIVE
        if reset_route:
            record.route_reset = record.last_fix_time  # off-route detection starts afresh
        self._touch(tx, record)
        if save:
            await model.save(tx, record)
        await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_ALERT_CLEARED, alert)

    # --- StartSafeTrip ----------------------------------------------------------------------------

    async def start(
        self, caller: Caller, request: safe_trip_pb2.StartSafeTripRequest
    ) -> safe_trip_pb2.SafeTrip:
        if request.parent != self.center:
            raise AnsimError(
                E.ERROR_REASON_RESOURCE_NOT_FOUND, f"this center is {self.center}, not {request.parent}"
            )

        async def action(tx: Transaction) -> safe_trip_pb2.SafeTrip:
            if moment(request.expected_arrival_time) <= tx.now:
                raise InvalidArgument(
                    [FieldViolation("expected_arrival_time", "must be after the center's clock", "TRIP-001")]
                )
            existing = await model.active_of(tx, caller.subject, request.mode)
            if existing is not None:
                raise AnsimError(
                    E.ERROR_REASON_ALREADY_EXISTS,
                    "the traveller already has an active safe trip of this mode",
                    metadata={"safe_trip": existing},
                )
            name = f"{self.center}/safeTrips/t-{uuid.uuid4().hex[:20]}"
            trip = S.SafeTrip(
                name=name,
                mode=request.mode,
                state=S.SAFE_TRIP_STATE_ACTIVE,
                traveler=caller.to_subject(),
                destination=request.destination,
                expected_arrival_time=request.expected_arrival_time,
                guardians=request.guardians,
                timers=self.timers.for_request(request),
                last_location=request.start_location,
                home_center=request.home_center,
                create_time=stamp(tx.now),
                update_time=stamp(tx.now),
            )
            if request.HasField("destination_address"):
                trip.destination_address.CopyFrom(request.destination_address)
            if request.HasField("corridor"):
                trip.corridor.CopyFrom(request.corridor)
            if request.HasField("profile"):
                trip.profile.CopyFrom(request.profile)
            fix_time = moment(request.start_location.fix_time)
            record = TripRecord(
                trip=trip,
                traveler=caller.subject,
                duress=request.duress_verifier.SerializeToString()
                if request.HasField("duress_verifier")
                else None,
                duress_emergency="",
                start_fix_time=fix_time,
                last_fix_time=fix_time,
            )
            await model.insert(tx, record)
            await self._store_fixes(tx, record, [request.start_location])
            # The scope's first event, so that a snapshot always has a sequence and cursor.
            await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_SNAPSHOT)
            return view(caller, record)

        return await idempotent(
            self.ctx.store,
            caller.key,
            SERVICE + "StartSafeTrip",
            request.request_id,
            request,
            S.SafeTrip,
            action,
        )

    # --- GetSafeTrip ------------------------------------------------------------------------------

    async def get(self, caller: Caller, name: str) -> safe_trip_pb2.SafeTrip:
        record = await self._load(self.ctx.store, name)
        require_reader(caller, record)
        return view(caller, record)

    # --- UpdateTripLocation -----------------------------------------------------------------------

    async def _store_fixes(
        self, tx: Transaction, record: TripRecord, locations: list[common_pb2.Location]
    ) -> None:
        corridor = record.trip.corridor if record.trip.HasField("corridor") else None
        for location in locations:
            outside = None if corridor is None else int(outside_corridor(location, corridor))
            await tx.execute(
                "INSERT INTO st_fixes (trip, fix_time, received, outside, location) VALUES (?, ?, ?, ?, ?)",
                (
                    record.name,
                    to_rfc3339(moment(location.fix_time)),
                    to_rfc3339(tx.now),
                    outside,
                    location.SerializeToString(deterministic=True),
                ),
            )

    async def _off_route(self, tx: Transaction, record: TripRecord) -> bool:
        """The §11.4 rule over the accepted fixes after the last reset."""
        if not record.trip.HasField("corridor"):
            return False
        reset = to_rfc3339(record.route_reset) if record.route_reset else ""
        row = await tx.fetchone(
            "SELECT MAX(fix_time) AS latest,"
            " MAX(CASE WHEN outside = 0 THEN fix_time END) AS last_inside"
            " FROM st_fixes WHERE trip = ? AND fix_time > ?",
            (record.name, reset),
        )
        if row is None or row["latest"] is None:
            return False
        after = row["last_inside"] or reset
        first = await tx.fetchone(
            "SELECT MIN(fix_time) AS first_out FROM st_fixes WHERE trip = ? AND outside = 1 AND fix_time > ?",
            (record.name, after),
        )
        if first is None or first["first_out"] is None or row["last_inside"] == row["latest"]:
            return False
        tolerance = record.trip.timers.off_route_tolerance.ToTimedelta()
        latest = datetime.fromisoformat(str(row["latest"]).replace("Z", "+00:00"))
        first_out = datetime.fromisoformat(str(first["first_out"]).replace("Z", "+00:00"))
        return first_out <= latest - tolerance

    async def update_location(
        self, caller: Caller, request: safe_trip_pb2.UpdateTripLocationRequest
    ) -> safe_trip_pb2.UpdateTripLocationResponse:
        forwarded: list[str] = []

        async def action(tx: Transaction) -> safe_trip_pb2.UpdateTripLocationResponse:
            record = await self._load(tx, request.name)
            require_traveler(caller, record)
            duress = bool(record.duress_emergency)
            silent = record.duress_emergency if record.duress_emergency.startswith("centers/") else ""
            if not record.active and not duress:  # after a duress end she may keep sending (TRIP-013)
                raise _not_active(record)
            fixes = list(request.locations)
            await self._store_fixes(tx, record, fixes)
            trip = record.trip
            newest = max(fixes, key=lambda f: moment(f.fix_time))
            if moment(newest.fix_time) > record.last_fix_time:
                record.last_fix_time = moment(newest.fix_time)
                trip.last_location.CopyFrom(newest)
                self._touch(tx, record)
                if record.active and (
                    record.last_location_event is None
                    or tx.now - record.last_location_event >= LOCATION_EVENT_INTERVAL
                ):
                    record.last_location_event = tx.now
                    await model.save(tx, record)
                    await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_LOCATION_UPDATED)
            await model.save(tx, record)
            if record.active:
                await self._evaluate(tx, record)
            if trip.state == S.SAFE_TRIP_STATE_ESCALATED and trip.emergency:
                forwarded.append(trip.emergency)
            if silent:
                forwarded.append(silent)
            return S.UpdateTripLocationResponse(accepted_count=len(fixes), safe_trip=view(caller, record))

        response = await idempotent(
            self.ctx.store,
            caller.key,
            SERVICE + "UpdateTripLocation",
            request.request_id,
            request,
            S.UpdateTripLocationResponse,
            action,
        )
        for emergency in forwarded:  # TRIP-018 / TRIP-013: the fixes also go to the emergency
            await self._forward_fixes(emergency, list(request.locations), request.request_id)
        return response

    async def _forward_fixes(self, emergency: str, locations: list[common_pb2.Location], key: str) -> None:
        sink = cast(
            LocationSink | None,
            getattr(self.ctx.domain.emergencies, "add_locations", None) and self.ctx.domain.emergencies,
        )
        if sink is None:
            log.warning("emergency port cannot take trip fixes (add_locations missing)")
            return
        try:
            await sink.add_locations(emergency, locations, f"safe-trip/{key}")
        except Exception:
            log.exception("could not add trip fixes to the emergency")

    # --- detection ---------------------------------------------------------------------------------

    async def _evaluate(self, tx: Transaction, record: TripRecord) -> None:
        """Open or clear alerts that the current state and clock call for (TRIP-004/005/006)."""
        trip = record.trip
        now = tx.now
        silence = trip.timers.location_silence.ToTimedelta()
        if trip.state == S.SAFE_TRIP_STATE_ALERTING:
            if (
                trip.active_alert.kind == S.TRIP_ALERT_KIND_LOCATION_LOST
                and now - record.last_fix_time < silence
            ):
                # A fresh fix ends LOCATION_LOST (TRIP-006); the fixes that brought it still count for
                # off route (TRIP-005, §11.4) — a batch showing 70 s outside must still alert.
                await self._clear_alert(tx, record, reset_route=False)
            return
        if trip.state != S.SAFE_TRIP_STATE_ACTIVE:
            return
        grace = trip.timers.overdue_grace.ToTimedelta()
        if now >= moment(trip.expected_arrival_time) + grace:
            await self._open_alert(tx, record, S.TRIP_ALERT_KIND_OVERDUE)
        elif await self._off_route(tx, record):
            await self._open_alert(tx, record, S.TRIP_ALERT_KIND_OFF_ROUTE)
        elif now - record.last_fix_time >= silence:
            await self._open_alert(tx, record, S.TRIP_ALERT_KIND_LOCATION_LOST)

    async def tick(self) -> None:
        """One scheduler pass over the ACTIVE and ALERTING trips."""
        due: list[str] = []
        for name in await model.watched(self.ctx.store):
            async with self.ctx.store.transaction() as tx:
                record = await model.load(tx, name)
                if record is None or not record.active:
                    continue
                await self._evaluate(tx, record)
                alert = record.trip.active_alert
                alerting = record.trip.state == S.SAFE_TRIP_STATE_ALERTING
                if alerting and alert.HasField("escalate_time") and moment(alert.escalate_time) <= tx.now:
                    due.append(name)
        for name in due:
            await self.escalate(name)

    # --- escalation (TRIP-008) ----------------------------------------------------------------------

    async def _raise_emergency(
        self, record: TripRecord, kind: int, key: str, description: str, *, duress: bool = False
    ) -> str:
        port = self.ctx.domain.emergencies
        if port is None:
            log.warning("no emergency area in this center: trip escalated without an emergency")
            return ""
        emergency = await port.raise_from_system(
            kind=kind,
            mode=record.trip.mode,
            location=record.trip.last_location,
            idempotency_key=key,
            origin=record.name,
            description=description,
            reporter=common_pb2.Subject(id=record.traveler, role=common_pb2.ROLE_APP_USER),
            profile=record.trip.profile if record.trip.HasField("profile") else None,
            duress=duress,
        )
        return emergency.name

    async def escalate(self, name: str) -> TripRecord:
        """Raise the SAFE_TRIP_OVERDUE emergency and move the trip to ESCALATED."""
        record = await self._load(self.ctx.store, name)
        if record.trip.state not in (S.SAFE_TRIP_STATE_ACTIVE, S.SAFE_TRIP_STATE_ALERTING):
            return record
        kind = (
            record.trip.active_alert.kind
            if record.trip.HasField("active_alert")
            else S.TRIP_ALERT_KIND_HELP_REQUESTED
        )
        description = (
            f"safe trip alert not cleared: {S.TripAlertKind.Name(kind).removeprefix('TRIP_ALERT_KIND_')}"
        )
        emergency = await self._raise_emergency(
            record, emergency_pb2.EMERGENCY_KIND_SAFE_TRIP_OVERDUE, f"{name}/escalation", description
        )
        async with self.ctx.store.transaction() as tx:
            record = await self._load(tx, name)
            trip = record.trip
            if trip.state not in (S.SAFE_TRIP_STATE_ACTIVE, S.SAFE_TRIP_STATE_ALERTING):
                return record
            if not trip.HasField("active_alert"):
                trip.active_alert.kind = S.TRIP_ALERT_KIND_HELP_REQUESTED
                trip.active_alert.detect_time.CopyFrom(stamp(tx.now))
                trip.active_alert.notified_guardian_count = await notify.tell_guardians(
                    tx, record, S.TRIP_ALERT_KIND_HELP_REQUESTED, self.ctx.settings.display_name
                )
                trip.active_alert.notify_time.CopyFrom(stamp(tx.now))
                trip.active_alert.escalate_time.CopyFrom(stamp(tx.now))
            trip.state = S.SAFE_TRIP_STATE_ESCALATED
            trip.emergency = emergency
            self._touch(tx, record)
            await model.save(tx, record)
            await tx.append_audit(
                SYSTEM_ACTOR, "ESCALATE_SAFE_TRIP", name, "safety", emergency or "no emergency area"
            )
            await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_ESCALATED, trip.active_alert)
            return record

    # --- ExtendSafeTrip ---------------------------------------------------------------------------

    async def extend(
        self, caller: Caller, request: safe_trip_pb2.ExtendSafeTripRequest
    ) -> safe_trip_pb2.SafeTrip:
        async def action(tx: Transaction) -> safe_trip_pb2.SafeTrip:
            record = await self._load(tx, request.name)
            require_traveler(caller, record)
            if not record.active:
                raise _not_active(record)
            new = moment(request.expected_arrival_time)
            if new <= tx.now or new > record.start_fix_time + MAX_TRIP:
                raise InvalidArgument(
                    [
                        FieldViolation(
                            "expected_arrival_time",
                            "must be after the center's clock and at most 12 hours after the trip's start",
                            "TRIP-009",
                        )
                    ]
                )
            trip = record.trip
            trip.expected_arrival_time.CopyFrom(request.expected_arrival_time)
            self._touch(tx, record)
            await model.save(tx, record)
            await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_EXTENDED)
            grace = trip.timers.overdue_grace.ToTimedelta()
            if (
                trip.state == S.SAFE_TRIP_STATE_ALERTING
                and trip.active_alert.kind == S.TRIP_ALERT_KIND_OVERDUE
                and new + grace > tx.now
            ):
                await self._clear_alert(tx, record)
            return view(caller, record)

        return await idempotent(
            self.ctx.store,
            caller.key,
            SERVICE + "ExtendSafeTrip",
            request.request_id,
            request,
            S.SafeTrip,
            action,
        )

    # --- ArriveSafeTrip / EndSafeTrip ------------------------------------------------------------

    async def finish(
        self,
        caller: Caller,
        method: str,
        request: safe_trip_pb2.ArriveSafeTripRequest | safe_trip_pb2.EndSafeTripRequest,
        state: int,
    ) -> safe_trip_pb2.SafeTrip:
        duress: list[TripRecord] = []

        async def action(tx: Transaction) -> safe_trip_pb2.SafeTrip:
            record = await self._load(tx, request.name)
            require_traveler(caller, record)
            if not record.active:
                raise _not_active(record)
            trip = record.trip
            if isinstance(request, S.ArriveSafeTripRequest) and request.HasField("location"):
                await self._store_fixes(tx, record, [request.location])
                if moment(request.location.fix_time) > record.last_fix_time:
                    record.last_fix_time = moment(request.location.fix_time)
                    trip.last_location.CopyFrom(request.location)
            if trip.state == S.SAFE_TRIP_STATE_ALERTING:
                await self._clear_alert(tx, record, save=False)
            elif trip.state == S.SAFE_TRIP_STATE_ESCALATED:
                pass  # the emergency goes on (TRIP-012); the alert stays as the one that escalated
            trip.state = state  # type: ignore[assignment]
            trip.end_time.CopyFrom(stamp(tx.now))
            self._touch(tx, record)
            if duress_matches(record.duress, request.code):
                duress.append(record)
                record.duress_emergency = DURESS_PENDING  # she may keep sending fixes (TRIP-013)
                await tx.append_audit(
                    SYSTEM_ACTOR, "DURESS_SAFE_TRIP", record.name, "safety", "silent emergency"
                )
            await model.save(tx, record)
            await self._publish(tx, record, S.SAFE_TRIP_EVENT_TYPE_FINISHED)
            return view(caller, record)

        response = await idempotent(
            self.ctx.store, caller.key, SERVICE + method, request.request_id, request, S.SafeTrip, action
        )
        for record in duress:
            self._spawn(self._raise_duress(record.name))
        return response

    async def drain(self) -> None:
        """Let work started after an acknowledged call (a duress SOS) finish (shutdown; the center
        bounds the wait and cancelling this cancels it)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _raise_duress(self, name: str) -> None:
        """TRIP-013: a silent SOS for the trip, seen by operators only."""
        try:
            record = await self._load(self.ctx.store, name)
            emergency = await self._raise_emergency(
                record,
                emergency_pb2.EMERGENCY_KIND_SILENT_SOS,
                f"{name}/duress",
                "duress code on safe trip end",
                duress=True,
            )
            async with self.ctx.store.transaction() as tx:
                await tx.execute("UPDATE st_trips SET duress_emergency = ? WHERE name = ?", (emergency, name))
        except Exception:
            log.exception("could not raise the duress emergency of a safe trip")

    # --- ResolveTripAlert -------------------------------------------------------------------------

    async def resolve(
        self, caller: Caller, request: safe_trip_pb2.ResolveTripAlertRequest
    ) -> safe_trip_pb2.SafeTrip:
        method = SERVICE + "ResolveTripAlert"
        record = await self._load(self.ctx.store, request.name)
        require_reader(caller, record)
        if request.action == S.TRIP_ALERT_ACTION_ESCALATE_NOW:
            replay = await self.ctx.store.fetchone(
                "SELECT 1 FROM idempotency WHERE caller = ? AND method = ? AND request_id = ?",
                (caller.key, method, request.request_id),
            )
            if replay is None:
                self._check_resolvable(record, request.action)
                await self.escalate(request.name)

        async def action(tx: Transaction) -> safe_trip_pb2.SafeTrip:
            current = await self._load(tx, request.name)
            if request.action == S.TRIP_ALERT_ACTION_ESCALATE_NOW:
                if current.trip.state != S.SAFE_TRIP_STATE_ESCALATED:
                    self._check_resolvable(current, request.action)
                await tx.append_audit(caller.subject, "ESCALATE_NOW", current.name, "safety", "escalated")
                return view(caller, current)
            self._check_resolvable(current, request.action)
            alert = current.trip.active_alert
            if alert.kind == S.TRIP_ALERT_KIND_OVERDUE:
                current.trip.expected_arrival_time.CopyFrom(stamp(tx.now))  # TRIP-009
            if alert.kind == S.TRIP_ALERT_KIND_LOCATION_LOST:
                current.last_fix_time = max(current.last_fix_time, tx.now)  # silence counts from the clear
            await self._clear_alert(tx, current)
            return view(caller, current)

        return await idempotent(
            self.ctx.store, caller.key, method, request.request_id, request, S.SafeTrip, action
        )

    @staticmethod
    def _check_resolvable(record: TripRecord, action: int) -> None:
        state = record.trip.state
        if not record.active:
            raise _not_active(record)
        if state == S.SAFE_TRIP_STATE_ESCALATED:
            raise _transition("the trip has escalated to an emergency; an operator resolves it")
        if action == S.TRIP_ALERT_ACTION_CLEAR and state != S.SAFE_TRIP_STATE_ALERTING:
            raise _transition("there is no open alert to clear")
