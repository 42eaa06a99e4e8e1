"""Tag-event ingest (spec §14.4): per-event validation, deduplication by event_id, durable storage,
derivation and notifications in one transaction, then emergencies for button and bell presses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, emergency_pb2, error_pb2

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from ansim_sdk.validation import violations_of
from reference_server.clock import Clock, from_rfc3339, to_rfc3339
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import center_of, content_hash, not_found, not_owner, to_ts
from reference_server.domain.child_safety.derivation import (
    new_id,
    on_sighting,
    reader_location,
    record_derived,
    remember_mode,
)
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


_PRESSES = frozenset({cs.TAG_EVENT_KIND_BUTTON_PRESS, cs.TAG_EVENT_KIND_BELL_PRESS})


def ack(event_id: str, status: int, error: AnsimError | None = None, emergency: str = "") -> cs.TagEventAck:
    out = cs.TagEventAck(event_id=event_id, status=status, emergency=emergency)  # type: ignore[arg-type]
    if error is not None:
        out.error.CopyFrom(error.to_status_proto())
    return out


def rejected(event_id: str, error: AnsimError) -> cs.TagEventAck:
    return ack(event_id, cs.TAG_EVENT_ACK_STATUS_REJECTED, error)


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
        try:
            return await self._handle(caller, event)
        except Exception:
            log.exception("tag event failed", extra={"event_id": event.event_id})
            error = AnsimError(
                error_pb2.ERROR_REASON_INTERNAL, "internal error; nothing was stored, resend it"
            )
            return rejected(event.event_id, error)

    async def handle_many(self, caller: Caller, events: Sequence[cs.TagEvent]) -> list[cs.TagEventAck]:
        """The acks of ``events``, in order, as :meth:`handle` gives them one by one, but with the
        events' transactions committed together: a run of events is started at once, so their
        transactions queue for the store's writer in event order and share its group commit, and
        each ack is ready only after the commit that contains its event. A button or bell press is
        handled alone, after the events before it, because whether it raises an emergency depends on
        the emergencies raised by the presses before it (TAG-016, TAG-017)."""
        acks: list[cs.TagEventAck] = []
        run: list[cs.TagEvent] = []

        async def finish_run() -> None:
            if run:
                acks.extend(await asyncio.gather(*(self.handle(caller, e) for e in run)))
                run.clear()

        for event in events:
            if event.kind in _PRESSES:
                await finish_run()
                acks.append(await self.handle(caller, event))
            else:
                run.append(event)
        await finish_run()
        return acks

    async def _handle(self, caller: Caller, event: cs.TagEvent) -> cs.TagEventAck:
        found = [_event_field(event, v) for v in violations_of(event)]
        if found:
            return rejected(event.event_id, InvalidArgument(found))
        received = self.clock.now()
        observed = event.observed_time.ToDatetime(tzinfo=UTC)
        if observed > received + MAX_AHEAD or observed < received - MAX_AGE:
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
        busy = await self._busy_sources(event)
        try:
            async with self.store.transaction() as tx:
                outcome = await self._store_and_derive(tx, caller, event, busy)
        except AnsimError as error:
            return rejected(event.event_id, error)
        result = outcome.ack
        for derived in outcome.to_raise:
            name = await self.raise_emergency(derived, event.event_id)
            if name and not result.emergency:
                result.emergency = name
        return result

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

    async def _store_and_derive(
        self, tx: Transaction, caller: Caller, event: cs.TagEvent, busy: set[str]
    ) -> _Outcome:
        digest = content_hash(event)
        stored = await tx.fetchone(
            "SELECT content_hash, emergency FROM cs_tag_events WHERE event_id = ?", (event.event_id,)
        )
        if stored is not None:
            if bytes(stored["content_hash"]) != digest:
                raise AnsimError(
                    error_pb2.ERROR_REASON_REQUEST_ID_REUSED, "another event was stored with this event_id"
                )
            return _Outcome(
                ack(event.event_id, cs.TAG_EVENT_ACK_STATUS_DUPLICATE, emergency=stored["emergency"]), []
            )
        reader = (
            await repository.load(tx, event.reader, cs.Reader)
            if center_of(event.reader) == self.center
            else None
        )
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
            tag = await repository.tag_by_uid(tx, event.tag_uid)
            if tag is None or (not tag.active and event.kind != cs.TAG_EVENT_KIND_BUTTON_PRESS):
                raise not_found("the tag")
        observed = event.observed_time.ToDatetime(tzinfo=UTC)
        await tx.execute(
            "INSERT INTO cs_tag_events (event_id, content_hash, received) VALUES (?, ?, ?)",
            (event.event_id, digest, to_rfc3339(tx.now)),
        )
        reader.last_event_time.CopyFrom(to_ts(tx.now))
        await repository.save(tx, reader.name, reader)
        ward = await repository.load(tx, tag.ward, cs.Ward) if tag is not None and tag.ward else None
        if ward is not None:
            await remember_mode(tx, ward.name, event.mode, observed)
        if tag is not None:
            if not tag.HasField("last_seen_time") or tag.last_seen_time.ToDatetime(tzinfo=UTC) < observed:
                tag.last_seen_time.CopyFrom(event.observed_time)
            if event.kind == cs.TAG_EVENT_KIND_LOW_BATTERY:
                tag.battery_percent = event.low_battery.battery_percent
            await repository.save(tx, tag.name, tag)
        method = (
            common_pb2.POSITIONING_METHOD_BELL
            if event.kind == cs.TAG_EVENT_KIND_BELL_PRESS
            else (common_pb2.POSITIONING_METHOD_TAG_READER)
        )
        location = common_pb2.Location()
        if event.HasField("location"):
            location.CopyFrom(event.location)
        else:
            location = reader_location(reader, observed, method)
        derived: list[Derived] = []
        if event.kind == cs.TAG_EVENT_KIND_SIGHTING and ward is not None:
            derived = await on_sighting(
                tx, ward, reader, event, location, test_exit_absence=self.notifier.test_exit_absence
            )
            await tx.execute(
                "INSERT INTO cs_sightings (ward, event_id, reader, reader_kind, observed, received, location,"
                " derived, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ward.name,
                    event.event_id,
                    reader.name,
                    reader.kind,
                    to_rfc3339(observed),
                    to_rfc3339(tx.now),
                    location.SerializeToString(),
                    derived[0].kind if derived else 0,
                    event.mode,
                ),
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
                zone = await repository.load(tx, reader.zone, cs.Zone) if reader.zone else None
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
