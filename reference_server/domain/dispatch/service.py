"""Dispatch use cases (spec §13): create, acknowledge, progress, close, read, and the deadline timer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from ansim.v1 import common_pb2, dispatch_pb2, emergency_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.domain.dispatch import repository
from reference_server.domain.dispatch.agencies import AgencyDirectory
from reference_server.domain.dispatch.subscriptions import Subscriptions, canonical_filter
from reference_server.domain.emergencies.events import timestamp
from reference_server.domain.emergencies.ids import center_of, new_id
from reference_server.domain.paging import PageTokens, page_size
from reference_server.events.publisher import Publisher
from reference_server.interceptors.metrics import DISPATCH_ACK_DELAY
from reference_server.security.caller import Caller
from reference_server.store.interface import Transaction
from reference_server.store.sqlite import SqliteStore

log = logging.getLogger("ansim.dispatch")
D = dispatch_pb2
OFFICERS = (common_pb2.ROLE_POLICE_OFFICER, common_pb2.ROLE_FIRE_OFFICER)
MAX_RENOTIFICATIONS = 3
TERMINAL = frozenset({D.DISPATCH_STATE_CLEARED, D.DISPATCH_STATE_CLOSED, D.DISPATCH_STATE_SUPERSEDED})
#: UpdateDispatchStatus transitions of §13.3 [DSP-010].
STATUS_TRANSITIONS = frozenset(
    {
        (D.DISPATCH_STATE_ACKNOWLEDGED, D.DISPATCH_STATE_EN_ROUTE),
        (D.DISPATCH_STATE_ACKNOWLEDGED, D.DISPATCH_STATE_ON_SCENE),
        (D.DISPATCH_STATE_EN_ROUTE, D.DISPATCH_STATE_ON_SCENE),
        (D.DISPATCH_STATE_ACKNOWLEDGED, D.DISPATCH_STATE_CLEARED),
        (D.DISPATCH_STATE_EN_ROUTE, D.DISPATCH_STATE_CLEARED),
        (D.DISPATCH_STATE_ON_SCENE, D.DISPATCH_STATE_CLEARED),
    }
)

#: Called in the transaction of an agency-side change so the emergency follows (EMG-018, EMG-026).
DispatchListener = Callable[[Transaction, dispatch_pb2.Dispatch, datetime], Awaitable[None]]


def _not_found(name: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{name} does not exist")


def _not_owner(what: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, what)


def _transition(current: int, target: int) -> AnsimError:
    return AnsimError(
        error_pb2.ERROR_REASON_INVALID_STATE_TRANSITION,
        f"a dispatch cannot move from {D.DispatchState.Name(current)} to {D.DispatchState.Name(target)}",  # type: ignore[arg-type]
    )


def _dt(ts: object) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined,no-any-return]


def summary_of(e: emergency_pb2.Emergency) -> dispatch_pb2.EmergencySummary:
    """What an agency learns of the emergency: never the reporter's profile [DSP-003, PRV-002]."""
    summary = D.EmergencySummary(kind=e.kind, nearby_cameras=list(e.selected_cameras))
    if e.HasField("last_location"):
        summary.location.CopyFrom(e.last_location)
    if e.HasField("civic_address"):
        summary.address.CopyFrom(e.civic_address)
    if e.HasField("raise_time"):
        summary.raise_time.CopyFrom(e.raise_time)
    notes = []
    if e.kind == emergency_pb2.EMERGENCY_KIND_SILENT_SOS:
        notes.append("silent SOS: do not call or text the reporter")
    if e.duress:
        notes.append("duress cancel received: the reporter is under threat, do not contact her phone")
    summary.details = "; ".join(notes)
    return summary


class DispatchDomain:
    def __init__(
        self,
        store: SqliteStore,
        publisher: Publisher,
        agencies: AgencyDirectory,
        ack_deadline: timedelta,
        pages: PageTokens,
        test_ack_deadline: timedelta | None = None,
    ) -> None:
        self.store = store
        self.agencies = agencies
        self.ack_deadline = ack_deadline
        #: The shorter acknowledgement interval of TEST-mode dispatches, if any [DSP-005].
        self.test_ack_deadline = test_ack_deadline
        self.subscriptions = Subscriptions(store, publisher, store.clock)
        self.pages = pages
        self.listener: DispatchListener | None = None

    def interval(self, mode: int) -> timedelta:
        """The acknowledgement interval of a dispatch of ``mode``: 30 s, shorter for TEST [DSP-005]."""
        if mode == common_pb2.MODE_TEST and self.test_ack_deadline is not None:
            return self.test_ack_deadline
        return self.ack_deadline

    # --- authorization ------------------------------------------------------------------------------

    @staticmethod
    def check_access(caller: Caller, d: dispatch_pb2.Dispatch) -> None:
        """Officers: own agency's dispatches; operators: own center's [DSP-019, SEC-011]."""
        if caller.role in OFFICERS:
            if caller.agency != d.agency:
                raise _not_owner("this dispatch is addressed to another agency")
        elif caller.center != center_of(d.name):
            raise _not_owner("this dispatch belongs to another center")

    async def _load_for(self, tx: Transaction, name: str, caller: Caller) -> dispatch_pb2.Dispatch:
        d = await repository.load(tx, name)
        if d is None:
            raise _not_found(name)
        self.check_access(caller, d)
        return d

    # --- changes made by the center -----------------------------------------------------------------

    async def create(
        self,
        tx: Transaction,
        e: emergency_pb2.Emergency,
        kind: int,
        now: datetime,
        prefer: Sequence[str] = (),
    ) -> dispatch_pb2.Dispatch | None:
        """A PENDING dispatch of ``e`` to the responsible agency of ``kind`` [DSP-001, DSP-005], unless
        one to that agency is still open [DSP-002] or no agency of the kind is configured. ``prefer``
        names agencies the directory lists for the location (§17): the first of them of ``kind`` that
        this center has a dispatch connection to is taken instead [FED-014]."""
        agency = self.agencies.first_of(kind, prefer) or self.agencies.responsible(
            kind, e.region.legal_dong_sigungu_code
        )
        if agency is None:
            log.error(
                "no agency configured for a dispatch",
                extra={"agency_kind": common_pb2.AgencyKind.Name(kind), "emergency": e.name},  # type: ignore[arg-type]
            )
            return None
        for existing in await repository.of_emergency(tx, e.name, open_only=True):
            if existing.agency == agency.name:
                return None
        center = e.name.split("/emergencies/")[0]
        d = D.Dispatch(
            name=f"{center}/dispatches/{new_id('d')}",
            emergency=e.name,
            incident_id=e.incident_id,
            agency=agency.name,
            agency_kind=kind,  # type: ignore[arg-type]
            mode=e.mode,
            summary=summary_of(e),
            state=D.DISPATCH_STATE_PENDING,
            ack_deadline=timestamp(now + self.interval(e.mode)),
            create_time=timestamp(now),
            update_time=timestamp(now),
        )
        if e.HasField("region"):
            d.region.CopyFrom(e.region)
        if e.HasField("last_location"):
            d.origin.latitude = e.last_location.latitude
            d.origin.longitude = e.last_location.longitude
        await repository.insert(tx, d)
        await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_CREATED, now)
        return d

    async def refresh_summaries(self, tx: Transaction, e: emergency_pb2.Emergency, now: datetime) -> None:
        """UPDATED events when an open dispatch's location moved > 25 m or its address or cameras
        changed, at most one per dispatch every 5 s [DSP-017]."""
        from reference_server.domain.emergencies.geo import distance_m

        for d in await repository.of_emergency(tx, e.name, open_only=True):
            new = summary_of(e)
            old = d.summary
            moved = False
            if new.HasField("location"):
                moved = not old.HasField("location") or (
                    distance_m(
                        old.location.latitude,
                        old.location.longitude,
                        new.location.latitude,
                        new.location.longitude,
                    )
                    > 25.0
                )
            changed = (
                moved
                or list(old.nearby_cameras) != list(new.nearby_cameras)
                or old.address != new.address
                or old.details != new.details
            )
            recent = (now - _dt(d.update_time)) < timedelta(seconds=5)
            if not changed or (recent and old.details == new.details):
                continue
            d.summary.CopyFrom(new)
            d.update_time.CopyFrom(timestamp(now))
            await repository.save(tx, d)
            await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_UPDATED, now)

    async def close_for_emergency(
        self, tx: Transaction, emergency: str, now: datetime
    ) -> list[dispatch_pb2.Dispatch]:
        """CLOSED / EMERGENCY_ENDED for every open dispatch of an ended emergency [DSP-012, DSP-018]."""
        closed = []
        for d in await repository.of_emergency(tx, emergency, open_only=True):
            self._end(d, D.DISPATCH_STATE_CLOSED, now)
            d.close_reason = D.DISPATCH_CLOSE_REASON_EMERGENCY_ENDED
            await repository.save(tx, d)
            await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_CLOSED, now)
            closed.append(d)
        return closed

    async def supersede_for_emergency(
        self, tx: Transaction, emergency: str, now: datetime
    ) -> list[dispatch_pb2.Dispatch]:
        """SUPERSEDED for every open dispatch of an emergency another center now handles (a handoff
        or an accepted forward after a fallback) [FED-015, FED-021]."""
        superseded = []
        for d in await repository.of_emergency(tx, emergency, open_only=True):
            self._end(d, D.DISPATCH_STATE_SUPERSEDED, now)
            await repository.save(tx, d)
            await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_SUPERSEDED, now)
            superseded.append(d)
        return superseded

    @staticmethod
    def _end(d: dispatch_pb2.Dispatch, state: int, now: datetime) -> None:
        d.state = state  # type: ignore[assignment]
        d.ClearField("ack_deadline")
        d.summary.ClearField("location")
        d.end_time.CopyFrom(timestamp(now))
        d.update_time.CopyFrom(timestamp(now))

    # --- agency and operator calls ------------------------------------------------------------------

    async def acknowledge(
        self, tx: Transaction, request: dispatch_pb2.AcknowledgeDispatchRequest, caller: Caller
    ) -> dispatch_pb2.Dispatch:
        now = tx.now
        d = await self._load_for(tx, request.name, caller)
        if d.state != D.DISPATCH_STATE_PENDING:
            raise _transition(d.state, D.DISPATCH_STATE_ACKNOWLEDGED)
        d.state = D.DISPATCH_STATE_ACKNOWLEDGED
        d.unit_id = request.unit_id
        if request.HasField("eta_duration"):
            d.eta_time.CopyFrom(timestamp(now + request.eta_duration.ToTimedelta()))
        elif request.HasField("eta_time"):
            d.eta_time.CopyFrom(request.eta_time)
        d.acknowledged_by.CopyFrom(caller.to_subject())
        d.acknowledge_time.CopyFrom(timestamp(now))
        d.status_note = request.note
        d.ClearField("ack_deadline")
        d.update_time.CopyFrom(timestamp(now))
        await repository.save(tx, d)
        await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_ACKNOWLEDGED, now)
        if self.listener is not None:
            await self.listener(tx, d, now)
        delay = (now - _dt(d.create_time)).total_seconds()
        label = common_pb2.AgencyKind.Name(d.agency_kind).removeprefix("AGENCY_KIND_")
        tx.on_commit(lambda: DISPATCH_ACK_DELAY.labels(agency_kind=label).observe(delay))
        return d

    async def update_status(
        self, tx: Transaction, request: dispatch_pb2.UpdateDispatchStatusRequest, caller: Caller
    ) -> dispatch_pb2.Dispatch:
        now = tx.now
        d = await self._load_for(tx, request.name, caller)
        if (d.state, request.state) not in STATUS_TRANSITIONS:
            raise _transition(d.state, request.state)
        if request.state == D.DISPATCH_STATE_CLEARED:
            self._end(d, D.DISPATCH_STATE_CLEARED, now)
        else:
            d.state = request.state
            d.update_time.CopyFrom(timestamp(now))
        d.status_note = request.note
        if request.HasField("eta_time"):
            d.eta_time.CopyFrom(request.eta_time)
        await repository.save(tx, d)
        await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_STATUS_CHANGED, now)
        if self.listener is not None:
            await self.listener(tx, d, now)
        return d

    async def close(
        self, tx: Transaction, request: dispatch_pb2.CloseDispatchRequest, caller: Caller
    ) -> dispatch_pb2.Dispatch:
        now = tx.now
        d = await self._load_for(tx, request.name, caller)
        if d.state in TERMINAL:
            raise _transition(d.state, D.DISPATCH_STATE_CLOSED)
        self._end(d, D.DISPATCH_STATE_CLOSED, now)
        d.close_reason = (
            D.DISPATCH_CLOSE_REASON_AGENCY if caller.role in OFFICERS else D.DISPATCH_CLOSE_REASON_OPERATOR
        )
        d.status_note = request.note
        await repository.save(tx, d)
        await self.subscriptions.fan_out(tx, d, D.DISPATCH_EVENT_TYPE_CLOSED, now)
        if self.listener is not None:
            await self.listener(tx, d, now)
        return d

    # --- reads ---------------------------------------------------------------------------------------

    async def get(self, name: str, caller: Caller) -> dispatch_pb2.Dispatch:
        d = await repository.load(self.store, name)
        if d is None:
            raise _not_found(name)
        self.check_access(caller, d)
        if caller.role in OFFICERS and d.summary.HasField("location"):
            await self._audit_read(caller, [d.name])
        return d

    async def list_dispatches(
        self, request: dispatch_pb2.ListDispatchesRequest, caller: Caller
    ) -> dispatch_pb2.ListDispatchesResponse:
        agency = request.agency
        if caller.role in OFFICERS:
            if agency and agency != caller.agency:
                raise _not_owner("officers list only their own agency's dispatches")
            agency = caller.agency
        elif caller.center != request.parent:
            raise _not_owner("operators list only their own center's dispatches")
        filters = f"{request.parent}|{agency}|{request.emergency}|{request.state}|{request.mode}"
        after = self.pages.decode_pair("dispatches", filters, request.page_token)
        size = page_size(request.page_size)
        rows = await repository.list_page(
            self.store,
            request.parent,
            agency=agency,
            emergency=request.emergency,
            state=request.state,
            mode=request.mode,
            after=after,
            limit=size + 1,
        )
        response = D.ListDispatchesResponse(dispatches=[d for _, d in rows[:size]])
        if len(rows) > size:
            last_time, last = rows[size - 1]
            response.next_page_token = self.pages.encode("dispatches", filters, (last_time, last.name))
        if caller.role in OFFICERS:
            located = [d.name for d in response.dispatches if d.summary.HasField("location")]
            if located:
                await self._audit_read(caller, located)
        return response

    async def _audit_read(self, caller: Caller, names: Sequence[str]) -> None:
        """An officer read an emergency's live location [AUD-001]."""
        async with self.store.transaction() as tx:
            for name in names:
                await tx.append_audit(caller.subject, "dispatch.location.read", name, "dispatch", "allowed")

    def stream(
        self, request: dispatch_pb2.SubscribeDispatchesRequest, caller: Caller, center: str
    ) -> AsyncIterator[bytes]:
        if request.parent != center:
            raise _not_found(request.parent)
        if caller.role in OFFICERS:
            if caller.agency != request.agency:
                raise _not_owner("officers subscribe only to their own agency's dispatches")
        elif caller.center != request.parent:
            raise _not_owner("operators subscribe only at their own center")
        area = request.area if request.HasField("area") else None
        flt = canonical_filter(list(request.sigungu_codes), area)
        return self.subscriptions.stream(
            request.parent, request.agency, request.mode, flt, request.resume_cursor
        )

    async def audit_subscription(
        self, caller: Caller, request: dispatch_pb2.SubscribeDispatchesRequest
    ) -> None:
        if caller.role in OFFICERS:
            async with self.store.transaction() as tx:
                await tx.append_audit(
                    caller.subject,
                    "dispatch.location.subscribe",
                    f"{request.parent}/{request.agency}",
                    "dispatch",
                    "allowed",
                )

    # --- the deadline timer --------------------------------------------------------------------------

    async def tick(self, now: datetime) -> None:
        """Re-notify or escalate every PENDING dispatch past its ack_deadline [DSP-006, DSP-007]."""
        for name in await repository.due(self.store, now):
            async with self.store.transaction() as tx:
                d = await repository.load(tx, name)
                if d is None or d.state != D.DISPATCH_STATE_PENDING or not d.HasField("ack_deadline"):
                    continue
                deadline = _dt(d.ack_deadline)
                if deadline > tx.now:
                    continue
                if d.renotification_count < MAX_RENOTIFICATIONS:
                    d.renotification_count += 1
                    d.ack_deadline.CopyFrom(timestamp(deadline + self.interval(d.mode)))
                    event = D.DISPATCH_EVENT_TYPE_RENOTIFIED
                else:
                    d.escalate_time.CopyFrom(timestamp(tx.now))
                    d.ClearField("ack_deadline")
                    event = D.DISPATCH_EVENT_TYPE_ESCALATED
                    log.warning(
                        "OPERATOR ALERT: dispatch not acknowledged, call the situation room",
                        extra={"dispatch": d.name, "agency": d.agency, "emergency": d.emergency},
                    )
                d.update_time.CopyFrom(timestamp(tx.now))
                await repository.save(tx, d)
                await self.subscriptions.fan_out(tx, d, event, tx.now)
