"""A dispatch change fanned out to several subscriptions is stored once and read back per
subscription (0011_shared_event_payloads): a resumed subscription replays it with its own cursor
and sequence [DSP-013, DSP-021], and the location purge of an ended TEST emergency scrubs the
shared copy for every subscription [PRV-011, PRV-015]."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from ansim.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, emergency_pb2, emergency_pb2_grpc

from tests.support.center import CenterProcess, start_center

PARENT = "centers/demo"
AGENCY = "agencies/seoul-112"
D = dispatch_pb2
E = emergency_pb2
Metadata = tuple[tuple[str, str], ...]


def _sos() -> E.RaiseEmergencyRequest:
    request = E.RaiseEmergencyRequest(
        parent=PARENT, request_id=str(uuid.uuid4()), mode=common_pb2.MODE_TEST, kind=E.EMERGENCY_KIND_APP_SOS
    )
    request.location.latitude, request.location.longitude = 37.5729, 126.9794
    request.location.radius_m = 15
    request.location.method = common_pb2.POSITIONING_METHOD_GNSS
    request.location.fix_time.GetCurrentTime()
    return request


async def _until(stream: Any, wanted: D.DispatchEventType.ValueType) -> D.DispatchEvent:
    async for event in stream:
        if event.type == wanted:
            return event  # type: ignore[no-any-return]
    raise AssertionError(f"the stream ended before a {D.DispatchEventType.Name(wanted)} event")


async def _replay(stub: Any, cursor: str, ops: Metadata, n: int) -> list[D.DispatchEvent]:
    request = D.SubscribeDispatchesRequest(
        parent=PARENT, agency=AGENCY, mode=common_pb2.MODE_TEST, resume_cursor=cursor
    )
    stream = stub.SubscribeDispatches(request, metadata=ops)
    events = [await asyncio.wait_for(stream.read(), 10) for _ in range(n)]
    stream.cancel()
    return events


async def _scenario(center: CenterProcess) -> None:
    ops, app = center.metadata("CENTER_OPERATOR"), center.metadata("APP_USER")
    async with center.channel() as channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        emergencies = emergency_pb2_grpc.EmergencyServiceStub(channel)
        subscribe = D.SubscribeDispatchesRequest(parent=PARENT, agency=AGENCY, mode=common_pb2.MODE_TEST)
        streams = [stub.SubscribeDispatches(subscribe, metadata=ops) for _ in range(3)]
        starts = [
            await asyncio.wait_for(_until(s, D.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE), 10) for s in streams
        ]
        emergency = await emergencies.RaiseEmergency(_sos(), metadata=app, timeout=10)
        live = [await asyncio.wait_for(_until(s, D.DISPATCH_EVENT_TYPE_CREATED), 10) for s in streams]
        for s in streams:
            s.cancel()
        assert {e.dispatch.emergency for e in live} == {emergency.name}
        assert all(e.dispatch.summary.HasField("location") for e in live), "before the purge: located"
        assert len({e.cursor for e in live}) == 3, "each subscription has its own cursor"
        for start, event in zip(starts, live, strict=True):
            assert event.sequence == start.sequence + 1
            (replayed,) = await _replay(stub, start.cursor, ops, 1)
            assert replayed == event, "the stored change reads back as it was delivered live"

        cancel = E.CancelEmergencyRequest(
            name=emergency.name, request_id=str(uuid.uuid4()), reason=E.EMERGENCY_CANCEL_REASON_ACCIDENTAL
        )
        await emergencies.CancelEmergency(cancel, metadata=app, timeout=10)
        for _ in range(300):  # the demo's TEST retention is 5 s, its job runs every second
            got = await emergencies.GetEmergency(E.GetEmergencyRequest(name=emergency.name), metadata=ops)
            if not got.HasField("last_location"):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the TEST emergency's fixes were not purged within 60 s")
        for start, event in zip(starts, live, strict=True):
            (replayed,) = await _replay(stub, start.cursor, ops, 1)
            assert (replayed.cursor, replayed.sequence) == (event.cursor, event.sequence)
            assert replayed.dispatch.name == event.dispatch.name
            assert not replayed.dispatch.summary.HasField("location"), "a purged location is replayed"
            assert not replayed.dispatch.HasField("origin"), "a purged origin is replayed"


def test_fanned_out_change_is_stored_once_replayed_per_subscription_and_scrubbed(tmp_path: Path) -> None:
    center = start_center(tmp_path / "center")
    try:
        asyncio.run(_scenario(center))
    finally:
        center.terminate()
