"""Publishing WatchEmergency events (spec §10.7) through THE publisher.

Each emergency has two event scopes: the reporter's (``{name}/reporterEvents``, her view, never
the staff-only event types [EMG-027], nothing after her view ended) and the staff's
(``{name}/staffEvents``, operators and officers, the true values). A stored event is an
``EmergencyEvent`` without cursor and sequence; the servicer fills them from the outbox.
"""

from __future__ import annotations

from datetime import datetime

from ansim.v1 import common_pb2, emergency_pb2
from google.protobuf import timestamp_pb2

from reference_server.domain.emergencies import views
from reference_server.domain.emergencies.repository import EmergencyRecord
from reference_server.events.publisher import Event, Publisher
from reference_server.store.interface import Transaction

EVENT_TYPE = "ansim.v1.EmergencyEvent"


def reporter_scope(name: str) -> str:
    return f"{name}/reporterEvents"


def staff_scope(name: str) -> str:
    return f"{name}/staffEvents"


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def reporter_view(record: EmergencyRecord) -> emergency_pb2.Emergency:
    """What the reporter sees now: the frozen view after a duress cancel, else the derived one."""
    if record.reporter_frozen is not None:
        return record.reporter_frozen
    return views.reporter_view(record.emergency)


async def publish(
    publisher: Publisher,
    tx: Transaction,
    record: EmergencyRecord,
    type: int,
    now: datetime,
    *,
    state_change: emergency_pb2.EmergencyStateChange | None = None,
    dispatch: emergency_pb2.DispatchedAgency | None = None,
    camera_change: emergency_pb2.CameraSetChange | None = None,
    location: common_pb2.Location | None = None,
    to_reporter: bool = True,
) -> None:
    """Publish one change to the staff scope and, when she may see it, to the reporter's scope."""
    e = record.emergency
    staff = emergency_pb2.EmergencyEvent(event_time=timestamp(now), type=type, emergency=e)  # type: ignore[arg-type]
    if state_change is not None:
        staff.state_change.CopyFrom(state_change)
    if dispatch is not None:
        staff.dispatch.CopyFrom(dispatch)
    if camera_change is not None:
        staff.camera_change.CopyFrom(camera_change)
    if location is not None:
        staff.location.CopyFrom(location)
    await publisher.publish(tx, staff_scope(e.name), Event.of(staff, e.mode, EVENT_TYPE))
    if not to_reporter or not record.reporter_key or type in views.STAFF_ONLY_EVENTS:
        return
    if record.reporter_frozen is not None:
        return
    terminal_change = state_change is not None and not record.reporter_active
    if not record.reporter_active and not terminal_change:
        return
    mine = emergency_pb2.EmergencyEvent(event_time=timestamp(now), type=type, emergency=reporter_view(record))  # type: ignore[arg-type]
    if state_change is not None:
        mine.state_change.CopyFrom(views.reporter_state_change(state_change))
    if dispatch is not None:
        mine.dispatch.CopyFrom(views.reporter_dispatch(dispatch))
    await publisher.publish(tx, reporter_scope(e.name), Event.of(mine, e.mode, EVENT_TYPE))


async def publish_to_reporter(
    publisher: Publisher,
    tx: Transaction,
    name: str,
    mode: int,
    view: emergency_pb2.Emergency,
    type: int,
    now: datetime,
    state_change: emergency_pb2.EmergencyStateChange | None = None,
) -> None:
    """Publish one event to the reporter's scope only (the duress cancel's CANCELLED, EMG-012)."""
    event = emergency_pb2.EmergencyEvent(event_time=timestamp(now), type=type, emergency=view)  # type: ignore[arg-type]
    if state_change is not None:
        event.state_change.CopyFrom(views.reporter_state_change(state_change))
    await publisher.publish(tx, reporter_scope(name), Event.of(event, mode, EVENT_TYPE))


async def publish_created(
    publisher: Publisher, tx: Transaction, record: EmergencyRecord, now: datetime
) -> None:
    """The first event of both scopes, so that every later snapshot has a sequence of at least 1."""
    await publish(publisher, tx, record, emergency_pb2.EMERGENCY_EVENT_TYPE_SNAPSHOT, now)
