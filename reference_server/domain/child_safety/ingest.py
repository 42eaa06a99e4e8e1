"""Tag-event ingest (spec §14.4): per-event validation, deduplication by event_id, durable storage,
derivation and notifications in one transaction, then emergencies for button and bell presses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, emergency_pb2, error_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from ansim_sdk.validation import violations_of
from reference_server.clock import Clock, from_rfc3339, to_rfc3339
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import center_of, content_hash, not_found, not_owner
from reference_server.domain.child_safety.derivation import (
    new_id,
    on_sighting,
    reader_location,
    record_derived,
)
from reference_server.domain.child_safety.event_check import plainly_valid
from reference_server.domain.child_safety.ingest_state import IngestState
from reference_server.domain.child_safety.notifications import Derived, Notifier
from reference_server.domain.ports import DomainPorts
from reference_server.security.caller import Caller
from reference_server.store.interface import Store, Transaction

log = logging.getLogger("ansim.child_safety")

MAX_AHEAD = timedelta(seconds=60)
MAX_AGE = timedelta(days=7)
LOW_BATTERY_QUIET = timedelta(hours=24)
EMERGENCY_RAISE_TIMEOUT_S = 4.0
ACTIVE_EMERGENCY_STATES = frozenset(
    {
        emergency_pb2.EMERGENCY_STATE_PENDING,
        emergency_pb2.EMERGENCY_STATE_RAISED,
        emergency_pb2.EMERGENCY_STATE_ACKNOWLEDGED,
        emergency_pb2.EMERGENCY_STATE_DISPATCHED,
        emergency_pb2.EMERGENCY_STATE_ON_SCENE,
    }
)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRESSES = frozenset({cs.TAG_EVENT_KIND_BUTTON_PRESS, cs.TAG_EVENT_KIND_BELL_PRESS})
#: The busy sources of an event that is not a press (never read: only presses raise emergencies).
_NONE_BUSY: frozenset[str] = frozenset()


def ack(event_id: str, status: int, error: AnsimError | None = None, emergency: str = "") -> cs.TagEventAck:
    out = cs.TagEventAck(event_id=event_id, status=status, emergency=emergency)  # type: ignore[arg-type]
    if error is not None:
        out.error.CopyFrom(error.to_status_proto())
    return out


def rejected(event_id: str, error: AnsimError) -> cs.TagEventAck:
    return ack(event_id, cs.TAG_EVENT_ACK_STATUS_REJECTED, error)


def _micros(stamp: Timestamp) -> tuple[int, int]:
    """A Timestamp to compare as its datetime would (to the microsecond), without making one."""
    return stamp.seconds, stamp.nanos // 1000


def _window(received: datetime) -> tuple[tuple[int, int], tuple[int, int]]:
    """The observed times accepted at ``received`` (TAG-005), as :func:`_micros` compares them."""

    def micros(moment: datetime) -> tuple[int, int]:
        since = moment - _EPOCH
        return since.days * 86_400 + since.seconds, since.microseconds

    return micros(received - MAX_AGE), micros(received + MAX_AHEAD)


def _event_field(event: cs.TagEvent, v: FieldViolation) -> FieldViolation:
    """Name the field a broken TAG-007 kind/details rule is about [ERR-003]."""
    if v.field or v.requirement != "TAG-007":
        return v
    kind = event.kind
    if (kind in (1, 2, 3) and not event.tag_uid) or (kind == 4 and event.tag_uid):
        field = "tag_uid"
    elif event.HasField("sighting") != (kind == 1):
        field = "sighting"
    else:
        field = "low_battery"
    return FieldViolation(field, v.description, v.requirement)


@dataclass
class _Outcome:
    ack: cs.TagEventAck
    #: Derived events that raise an emergency once the event is durable.
    to_raise: list[Derived]


class Ingest:
    def __init__(
        self, center: str, store: Store, clock: Clock, notifier: Notifier, ports: DomainPorts
    ) -> None:
        self.center = center
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.ports = ports

    async def handle(self, caller: Caller, event: cs.TagEvent) -> cs.TagEventAck:
        """Process one event and return its ack (TAG-002..TAG-010, TAG-016..TAG-019); an unexpected
        failure rejects that event (nothing stored) instead of ending the gateway's stream."""
        return (await self._handle_run(caller, [event]))[0]

    async def handle_many(self, caller: Caller, events: Sequence[cs.TagEvent]) -> list[cs.TagEventAck]:
        """The acks of ``events``, in order, as :meth:`handle` gives them one by one, but with a run
        of events stored and derived in order in ONE transaction (:meth:`_handle_run`), each ack
        ready only after that transaction's commit. A button or bell press is handled alone, after
        the events before it, because whether it raises an emergency depends on the emergencies
        raised by the presses before it (TAG-016, TAG-017)."""
        acks: list[cs.TagEventAck] = []
        run: list[cs.TagEvent] = []
        for event in events:
            if event.kind in _PRESSES:
                if run:
                    acks.extend(await self._handle_run(caller, run))
                    run = []
                acks.append(await self.handle(caller, event))
            else:
                run.append(event)
        if run:
            acks.extend(await self._handle_run(caller, run))
        return acks

    def _precheck(
        self, event: cs.TagEvent, window: tuple[tuple[int, int], tuple[int, int]]
    ) -> cs.TagEventAck | None:
        """The REJECTED ack of an event that breaks a constraint (TAG-007) or whose observed_time is
        outside ``window`` (TAG-005, :func:`_window`); None when it may go on to the store."""
        if not plainly_valid(event):
            found = [_event_field(event, v) for v in violations_of(event)]
            if found:
                return rejected(event.event_id, InvalidArgument(found))
        observed = _micros(event.observed_time)
        if observed > window[1] or observed < window[0]:
            return rejected(
                event.event_id,
                InvalidArgument(
                    [
                        FieldViolation(
                            "observed_time", "TAG-005: more than 60 s ahead of or 7 days before receipt"
                        )
                    ]
                ),
            )
        return None

    async def _handle_run(self, caller: Caller, events: Sequence[cs.TagEvent]) -> list[cs.TagEventAck]:
        """The acks of ``events``: those that pass the checks are stored and derived in order in one
        transaction sharing one :class:`IngestState`; an event rejected by the store's checks is
        rejected alone. Should the transaction fail as a whole, a run of several is retried event by
        event, so a failure rejects only the event it belongs to, as it always did."""
        window = _window(self.clock.now())  # the run's events were received together
        acks: list[cs.TagEventAck | None] = [self._precheck(e, window) for e in events]
        todo = [i for i, a in enumerate(acks) if a is None]
        if not todo:
            return [a for a in acks if a is not None]
        # Only a press asks which of its sources are busy (TAG-016, TAG-017); presses run alone.
        busy = {i: await self._busy_sources(events[i]) for i in todo if events[i].kind in _PRESSES}
        try:
            outcomes = await self._store_run(caller, [(events[i], busy.get(i, _NONE_BUSY)) for i in todo])
        except Exception as error:
            if len(todo) > 1:
                for i in todo:
                    acks[i] = await self.handle(caller, events[i])
                return [a for a in acks if a is not None]
            event = events[todo[0]]
            if isinstance(error, AnsimError):
                acks[todo[0]] = rejected(event.event_id, error)
            else:
                log.exception("tag event failed", extra={"event_id": event.event_id})
                internal = AnsimError(
                    error_pb2.ERROR_REASON_INTERNAL, "internal error; nothing was stored, resend it"
                )
                acks[todo[0]] = rejected(event.event_id, internal)
            return [a for a in acks if a is not None]
        for i, outcome in zip(todo, outcomes, strict=True):
            result = outcome.ack
            for derived in outcome.to_raise:
                try:
                    name = await self.raise_emergency(derived, events[i].event_id)
                except Exception:  # the event is durable: the scheduler retries the emergency
                    log.exception("linking the emergency failed", extra={"event_id": events[i].event_id})
                    continue
                if name and not result.emergency:
                    result.emergency = name
            acks[i] = result
        return [a for a in acks if a is not None]

    async def _store_run(
        self, caller: Caller, run: Sequence[tuple[cs.TagEvent, AbstractSet[str]]]
    ) -> list[_Outcome]:
        """Store and derive ``run`` (events with their busy sources) in one transaction."""
        outcomes: list[_Outcome] = []
        async with self.store.transaction() as tx:
            state = IngestState(tx)
            if len(run) > 1:
                await state.prefetch_events([event.event_id for event, _ in run])
            for event, busy in run:
                try:
                    checked = await self._check(state, caller, event)
                except AnsimError as error:  # raised before the event wrote anything
                    outcomes.append(_Outcome(rejected(event.event_id, error), []))
                    continue
                if isinstance(checked, _Outcome):
                    outcomes.append(checked)
                    continue
                outcomes.append(await self._store_and_derive(state, event, *checked, busy))
            await state.flush()
        return outcomes

    async def _busy_sources(self, event: cs.TagEvent) -> set[str]:
        """The tag and reader of ``event`` whose last emergency is still active (TAG-016, TAG-017)."""
        port = self.ports.emergencies
        if port is None or event.kind not in (cs.TAG_EVENT_KIND_BUTTON_PRESS, cs.TAG_EVENT_KIND_BELL_PRESS):
            return set()
        sources = [event.reader]
        tag = await repository.tag_by_uid(self.store, event.tag_uid) if event.tag_uid else None
        if tag is not None:
            sources.append(tag.name)
        busy = set()
        for source in sources:
            row = await self.store.fetchone(
                "SELECT emergency FROM cs_source_emergency WHERE source = ?", (source,)
            )
            if row is None:
                continue
            emergency = await port.get(str(row["emergency"]))
            if emergency is not None and emergency.state in ACTIVE_EMERGENCY_STATES:
                busy.add(source)
        return busy

    async def _check(
        self, state: IngestState, caller: Caller, event: cs.TagEvent
    ) -> _Outcome | tuple[bytes, cs.Reader, cs.Tag | None]:
        """What the store says of ``event`` before anything is written: the DUPLICATE ack of a
        repeat (TAG-003), or its content hash, reader and tag; AnsimError for TAG-004, TAG-006 and
        TAG-010."""
        digest = content_hash(event)
        stored = await state.stored_event(event.event_id)
        if stored is not None:
            if stored.content_hash != digest:
                raise AnsimError(
                    error_pb2.ERROR_REASON_REQUEST_ID_REUSED, "another event was stored with this event_id"
                )
            return _Outcome(
                ack(event.event_id, cs.TAG_EVENT_ACK_STATUS_DUPLICATE, emergency=stored.emergency), []
            )
        reader = await state.load(event.reader, cs.Reader) if center_of(event.reader) == self.center else None
        if reader is None:
            raise not_found(event.reader)
        if reader.gateway != caller.subject:
            raise not_owner("the reader belongs to another gateway")
        if reader.kind == cs.READER_KIND_NETWORK and not event.HasField("location"):
            raise InvalidArgument(
                [FieldViolation("location", "TAG-006: a NETWORK reader's event needs location")]
            )
        tag: cs.Tag | None = None
        if event.tag_uid:
            tag = await state.tag_by_uid(event.tag_uid)
            if tag is None or (not tag.active and event.kind != cs.TAG_EVENT_KIND_BUTTON_PRESS):
                raise not_found("the tag")
        return digest, reader, tag

    async def _store_and_derive(
        self,
        state: IngestState,
        event: cs.TagEvent,
        digest: bytes,
        reader: cs.Reader,
        tag: cs.Tag | None,
        busy: AbstractSet[str],
    ) -> _Outcome:
        tx = state.tx
        observed = event.observed_time.ToDatetime(tzinfo=UTC)
        state.insert_event(event.event_id, digest)
        state.touch(reader)
        ward = await state.load(tag.ward, cs.Ward) if tag is not None and tag.ward else None
        if ward is not None:
            state.remember_mode(ward.name, event.mode, observed)
        if tag is not None:
            seen = tag.last_seen_time
            if not tag.HasField("last_seen_time") or _micros(seen) < _micros(event.observed_time):
                seen.CopyFrom(event.observed_time)
            if event.kind == cs.TAG_EVENT_KIND_LOW_BATTERY:
                tag.battery_percent = event.low_battery.battery_percent
            state.changed(tag)
        method = (
            common_pb2.POSITIONING_METHOD_BELL
            if event.kind == cs.TAG_EVENT_KIND_BELL_PRESS
            else (common_pb2.POSITIONING_METHOD_TAG_READER)
        )
        if event.HasField("location"):
            location = common_pb2.Location()
            location.CopyFrom(event.location)
        else:
            location = reader_location(reader, observed, method)
        derived: list[Derived] = []
        if event.kind == cs.TAG_EVENT_KIND_SIGHTING and ward is not None:
            derived = await on_sighting(
                state,
                ward,
                reader,
                event,
                observed,
                location,
                test_exit_absence=self.notifier.test_exit_absence,
            )
            state.add_sighting(
                (
                    ward.name,
                    event.event_id,
                    reader.name,
                    reader.kind,
                    to_rfc3339(observed),
                    state.now_text,
                    location.SerializeToString(),
                    derived[0].kind if derived else 0,
                    event.mode,
                )
            )
        elif event.kind == cs.TAG_EVENT_KIND_LOW_BATTERY and ward is not None and tag is not None:
            recent = await tx.fetchone(
                "SELECT 1 FROM cs_derived WHERE tag = ? AND kind = ? AND created > ?",
                (tag.name, cs.DERIVED_EVENT_KIND_LOW_BATTERY, to_rfc3339(tx.now - LOW_BATTERY_QUIET)),
            )
            if recent is None:
                derived.append(
                    Derived(
                        new_id(),
                        cs.DERIVED_EVENT_KIND_LOW_BATTERY,
                        event.mode,
                        observed,
                        ward,
                        reader.name,
                        tag=tag.name,
                    )
                )
        elif event.kind == cs.TAG_EVENT_KIND_BUTTON_PRESS and tag is not None:
            if tag.name not in busy:
                derived.append(
                    Derived(
                        new_id(),
                        cs.DERIVED_EVENT_KIND_SOS,
                        event.mode,
                        observed,
                        ward,
                        reader.name,
                        reader.zone,
                        location=location,
                        tag=tag.name,
                        emergency_kind=emergency_pb2.EMERGENCY_KIND_TAG_BUTTON,
                    )
                )
        elif event.kind == cs.TAG_EVENT_KIND_BELL_PRESS:
            if reader.name not in busy:
                zone = await state.load(reader.zone, cs.Zone) if reader.zone else None
                derived.append(
                    Derived(
                        new_id(),
                        cs.DERIVED_EVENT_KIND_BELL,
                        event.mode,
                        observed,
                        None,
                        reader.name,
                        reader.zone,
                        zone.display_name if zone is not None else reader.display_name,
                        location=location,
                        emergency_kind=emergency_pb2.EMERGENCY_KIND_EMERGENCY_BELL,
                        bell_contacts=list(zone.school_contacts) if zone is not None else [],
                    )
                )
        elif event.kind == cs.TAG_EVENT_KIND_TAMPER:
            log.warning("tamper event", extra={"reader": reader.name, "event_id": event.event_id})
        if derived:
            await state.flush()  # what the notifier reads is as each event left it, one by one
        for d in derived:
            await record_derived(tx, d)
            await self.notifier.create(tx, d)
        return _Outcome(
            ack(event.event_id, cs.TAG_EVENT_ACK_STATUS_ACCEPTED), [d for d in derived if d.emergency_kind]
        )

    async def raise_emergency(self, d: Derived, event_id: str = "") -> str:
        """Raise the emergency of a derived event through the emergency area and link it to the
        notification (GRD-006); "" when the area is absent or fails (the scheduler retries)."""
        port = self.ports.emergencies
        if port is None:
            log.warning(
                "no emergency area in this center; guardians are notified only", extra={"derived": d.id}
            )
            return ""
        location = d.location or common_pb2.Location()
        origin = d.ward.name if d.ward is not None else d.reader
        try:
            emergency = await asyncio.wait_for(
                port.raise_from_system(
                    kind=d.emergency_kind,
                    mode=d.mode,
                    location=location,
                    idempotency_key=f"child-safety-{d.id}",
                    origin=origin,
                    description=f"child safety: {cs.DerivedEventKind.Name(d.kind)}",  # type: ignore[arg-type]
                ),
                EMERGENCY_RAISE_TIMEOUT_S,
            )
        except Exception:
            log.exception("raising the emergency failed; will retry", extra={"derived": d.id})
            return ""
        async with self.store.transaction() as tx:
            await self.link(tx, d, emergency.name)
            if event_id:
                await tx.execute(
                    "UPDATE cs_tag_events SET emergency = ? WHERE event_id = ?", (emergency.name, event_id)
                )
        return emergency.name

    async def link(self, tx: Transaction, d: Derived, emergency: str) -> None:
        await tx.execute("UPDATE cs_derived SET emergency = ? WHERE id = ?", (emergency, d.id))
        source = d.tag if d.kind == cs.DERIVED_EVENT_KIND_SOS else d.reader
        await tx.execute(
            "INSERT INTO cs_source_emergency (source, emergency) VALUES (?, ?)"
            " ON CONFLICT (source) DO UPDATE SET emergency = excluded.emergency",
            (source, emergency),
        )
        await self.notifier.link_emergency(tx, d.id, emergency)

    async def pending_emergencies(self, older_than: datetime) -> list[Derived]:
        """Derived events whose emergency is still to raise (crash or failure after the ack)."""
        rows = await self.store.fetchall(
            "SELECT * FROM cs_derived WHERE emergency_kind != 0 AND emergency = '' AND created < ?",
            (to_rfc3339(older_than),),
        )
        out = []
        for r in rows:
            ward = await repository.load(self.store, r["ward"], cs.Ward) if r["ward"] else None
            location = common_pb2.Location.FromString(bytes(r["location"])) if r["location"] else None
            out.append(
                Derived(
                    str(r["id"]),
                    int(r["kind"]),
                    int(r["mode"]),
                    from_rfc3339(r["event_time"]),
                    ward,
                    str(r["reader"]),
                    str(r["zone"]),
                    location=location,
                    tag=str(r["tag"]),
                    emergency_kind=int(r["emergency_kind"]),
                )
            )
        return out
