"""TAG-007 on the ingest's fast path: a real center rejects exactly the TagEvents that break a rule of
child_safety.proto, with INVALID_ARGUMENT, whether its quick check or protovalidate judged them.

The center checks the common shapes of TagEvent itself (reference_server/domain/child_safety/
event_check.py) and asks protovalidate only about the rest. Each event of a corpus of edge values
(every field at and beyond its bounds, every kind with and without its details) is submitted, and
its ack must be INVALID_ARGUMENT exactly when protovalidate finds a violation in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc as csg
from ansim.v1 import common_pb2
from google.rpc import code_pb2

from ansim_sdk.validation import violations_of
from reference_server.domain.child_safety.event_check import (
    BATCH_RULES_DIGEST,
    RULES_DIGEST,
    batch_rules_digest,
    rules_digest,
)
from tests.support.center import CenterProcess, start_center

READER = "centers/demo/readers/school-gate"
TAG_UID = "3F2A9C01"


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    process = start_center(tmp_path_factory.mktemp("tag-validation"))
    yield process
    process.terminate()


def _event(of_kind: int, **fields: object) -> cs.TagEvent:
    """A valid event of ``of_kind`` (TEST mode, 5 s old), then ``fields`` changed."""
    kind = of_kind
    event = cs.TagEvent(
        event_id=str(uuid.uuid4()),
        reader=READER,
        tag_uid="" if kind == cs.TAG_EVENT_KIND_BELL_PRESS else TAG_UID,
        kind=kind,  # type: ignore[arg-type]
        mode=common_pb2.MODE_TEST,
    )
    if kind == cs.TAG_EVENT_KIND_SIGHTING:
        event.sighting.rssi_dbm = -60
    if kind == cs.TAG_EVENT_KIND_LOW_BATTERY:
        event.low_battery.battery_percent = 15
    event.observed_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=5))
    for name, value in fields.items():
        if name == "rssi_dbm":
            event.sighting.rssi_dbm = value  # type: ignore[assignment]
        elif name == "direction":
            event.sighting.direction = value  # type: ignore[assignment]
        elif name == "battery_percent":
            event.low_battery.battery_percent = value  # type: ignore[assignment]
        elif name == "no_observed_time":
            event.ClearField("observed_time")
        elif name == "add_sighting":
            event.sighting.rssi_dbm = -50
        elif name == "add_low_battery":
            event.low_battery.battery_percent = 50
        elif name == "drop_details":
            event.ClearField("sighting")
            event.ClearField("low_battery")
        elif name == "location":
            event.location.CopyFrom(value)  # type: ignore[arg-type]
        else:
            setattr(event, name, value)
    return event


def corpus() -> list[cs.TagEvent]:
    """Valid events of each kind and one or two rules broken at a time, at and beyond bounds."""
    sighting, low, tamper = (
        cs.TAG_EVENT_KIND_SIGHTING,
        cs.TAG_EVENT_KIND_LOW_BATTERY,
        cs.TAG_EVENT_KIND_TAMPER,
    )
    bell, button = cs.TAG_EVENT_KIND_BELL_PRESS, cs.TAG_EVENT_KIND_BUTTON_PRESS
    fix = common_pb2.Location(latitude=37.5729, longitude=126.9794, radius_m=10)
    out = [
        _event(sighting),
        _event(sighting, event_id=str(uuid.uuid4()).upper()),
        _event(sighting, event_id=str(uuid.uuid4()).replace("-", "")),
        _event(sighting, event_id=str(uuid.uuid4()) + "\n"),
        _event(sighting, event_id=""),
        _event(sighting, reader=READER + "\n"),
        _event(sighting, reader="centers/demo/readers/School-gate"),
        _event(sighting, reader="centers/demo/readers/" + "a" * 63),
        _event(sighting, reader="centers/demo/readers/" + "a" * 64),
        _event(sighting, tag_uid="3F2A9C0"),
        _event(sighting, tag_uid=TAG_UID + "\n"),
        _event(sighting, tag_uid="3F2A_9C01"),
        _event(sighting, tag_uid=""),
        _event(sighting, kind=0),
        _event(sighting, kind=9),
        _event(sighting, mode=0),
        _event(sighting, mode=7),
        _event(sighting, mode=common_pb2.MODE_EXERCISE),
        _event(sighting, no_observed_time=True),
        _event(sighting, rssi_dbm=-127),
        _event(sighting, rssi_dbm=-128),
        _event(sighting, rssi_dbm=20),
        _event(sighting, rssi_dbm=21),
        _event(sighting, direction=cs.SIGHTING_DIRECTION_OUTBOUND),
        _event(sighting, direction=5),
        _event(sighting, drop_details=True),
        _event(sighting, add_low_battery=True),
        _event(sighting, location=fix),
        _event(sighting, location=common_pb2.Location(latitude=91, longitude=0)),
        _event(low),
        _event(low, battery_percent=100),
        _event(low, battery_percent=101),
        _event(low, drop_details=True),
        _event(low, add_sighting=True),
        _event(low, tag_uid=""),
        _event(tamper),
        _event(tamper, tag_uid=""),
        _event(tamper, add_sighting=True),
        _event(bell),
        _event(bell, tag_uid=TAG_UID),
        _event(bell, add_low_battery=True),
        _event(button),
        _event(button, tag_uid=""),
    ]
    return out


def test_the_quick_check_knows_the_rules_of_the_proto() -> None:
    # A changed rule of TagEvent turns the quick check off (everything goes to protovalidate) until
    # event_check.py is brought up to date with it and RULES_DIGEST renewed.
    assert rules_digest() == RULES_DIGEST
    # The same for SubmitTagEventsRequest's own rules (TAG-009; TC_TAG_016_SRV submits the bounds).
    assert batch_rules_digest() == BATCH_RULES_DIGEST


@pytest.mark.asyncio(loop_scope="session")
async def test_rejected_as_invalid_exactly_when_a_rule_is_broken(center: CenterProcess) -> None:
    events = corpus()
    async with center.channel() as channel:
        response = await csg.TagEventServiceStub(channel).SubmitTagEvents(
            cs.SubmitTagEventsRequest(events=events, request_id=str(uuid.uuid4())),
            metadata=center.metadata("READER_GATEWAY"),
            timeout=60,
        )
    assert len(response.acks) == len(events)  # TAG-009
    invalid = [bool(violations_of(e)) for e in events]
    assert sum(invalid) >= 20 and sum(not i for i in invalid) >= 8  # the corpus tests both sides
    for event, ack, broken in zip(events, response.acks, invalid, strict=True):
        rejected_invalid = (
            ack.status == cs.TAG_EVENT_ACK_STATUS_REJECTED and ack.error.code == code_pb2.INVALID_ARGUMENT
        )
        assert rejected_invalid == broken, (event, ack)
        if not broken and event.reader == READER:  # (another reader: NOT_FOUND, TAG-006)
            assert ack.status == cs.TAG_EVENT_ACK_STATUS_ACCEPTED, (event, ack)
