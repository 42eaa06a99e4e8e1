"""A stored event payload with a stream's position appended on the wire parses as the message with
cursor and sequence set (the dispatch and guardian streams write these bytes) [DSP-013, GRD-011]."""

from __future__ import annotations

import pytest
from ansim.v1 import dispatch_pb2, guardian_pb2

from reference_server.events.wire import with_position


@pytest.mark.parametrize("sequence", [1, 127, 128, 300, 2**35, 2**64 - 1])
@pytest.mark.parametrize("cursor", ["c", "sub.é" + "x" * 200])
def test_dispatch_event_with_position(cursor: str, sequence: int) -> None:
    event = dispatch_pb2.DispatchEvent(type=dispatch_pb2.DISPATCH_EVENT_TYPE_CREATED, replay=True)
    event.dispatch.name = "centers/demo/dispatches/d1"
    event.event_time.seconds = 1_700_000_000
    wire = with_position(event.SerializeToString(deterministic=True), cursor, sequence)
    expected = dispatch_pb2.DispatchEvent()
    expected.CopyFrom(event)
    expected.cursor, expected.sequence = cursor, sequence
    assert dispatch_pb2.DispatchEvent.FromString(wire) == expected


def test_a_stored_position_is_replaced() -> None:
    stored = guardian_pb2.StreamNotificationsResponse(cursor="old", sequence=9)
    stored.notification.name = "centers/demo/guardians/g/notifications/n"
    parsed = guardian_pb2.StreamNotificationsResponse.FromString(
        with_position(stored.SerializeToString(), "new", 10)
    )
    assert (parsed.cursor, parsed.sequence) == ("new", 10)
    assert parsed.notification.name == stored.notification.name
