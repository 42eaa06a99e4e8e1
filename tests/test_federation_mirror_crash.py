"""A mirrored event is never acknowledged without being applied [FED-024].

A real home center (``ansim serve --demo`` pointed at the suite's federation harness, which plays
the directory and the handling peer) forwards a TEST SOS to the harness peer. The peer mirrors
``started`` and an acknowledged dispatch; the center process dies while applying them (a crash
fault, tests/support/mirror_crash_plugin.py). After a restart the peer resends what it has not seen
acknowledged, and the home emergency must show the dispatch: had the center committed
``last_applied_sequence`` before applying, the resend would be ignored and the dispatch lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import pytest
from ansim.v1 import (
    common_pb2,
    dispatch_pb2,
    emergency_pb2,
    emergency_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
)

from conformance.declaration import load_declaration
from conformance.harness.federation.harness import FederationHarness
from tests.support.center import CenterProcess, start_center
from tests.support.federation_harness import (
    free_port_block,
    harness_environment,
    write_harness_declaration,
)
from tests.support.mirror_crash_plugin import EXIT_CODE, MARKER

PLUGIN = "tests.support.mirror_crash_plugin:register"
#: The center retries ListCenters every RELOAD_S; a loaded 2-core machine can take a while.
READY_S = 20.0


def _event(sequence: int, **kind: object) -> federation_pb2.MirrorEvent:
    event = federation_pb2.MirrorEvent(sequence=sequence, **kind)  # type: ignore[arg-type]
    event.event_time.GetCurrentTime()
    return event


def _fix(lat: float, lon: float) -> common_pb2.Location:
    fix = common_pb2.Location(
        latitude=lat, longitude=lon, radius_m=15, method=common_pb2.POSITIONING_METHOD_GNSS
    )
    fix.fix_time.FromDatetime(datetime.now(UTC))
    return fix


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[CenterProcess], Path]]:
    """A home center pointed at the harness (environment only), and its declaration with the
    harness section; the harness itself runs in the test's event loop."""
    listen = f"127.0.0.1:{free_port_block()}"
    pki = tmp_path / "harness-pki"
    # set for the whole test (not only the first start): the restarted center needs it too
    for name, value in harness_environment(pki, listen).items():
        monkeypatch.setenv(name, value)
    centers = [start_center(tmp_path / "center", plugins=[PLUGIN])]
    config = write_harness_declaration(centers[0], listen, pki)
    try:
        yield centers, config
    finally:
        for center in centers:
            if center.process.poll() is None:
                center.terminate()


async def _registry_loaded(harness: FederationHarness, after: float = 0.0) -> None:
    listed = await harness.wait_for(
        lambda c: c.method == "ListCenters" and c.answer == "ok" and c.at > after, READY_S
    )
    assert listed, "the center never loaded its registry from the harness directory"


@pytest.mark.slow
async def test_a_crash_while_applying_a_mirror_loses_no_event(
    setup: tuple[list[CenterProcess], Path],
) -> None:
    centers, config = setup
    harness = FederationHarness(load_declaration(config), uuid.uuid4().hex)
    await harness.start()
    try:
        await _crash_and_resend(centers, harness)
    finally:
        await harness.stop()


async def _crash_and_resend(centers: list[CenterProcess], harness: FederationHarness) -> None:
    center = centers[0]
    await _registry_loaded(harness)
    main = harness.peer("main")
    slot = harness.slot(candidates=[main])
    async with center.channel() as channel:
        sos = await emergency_pb2_grpc.EmergencyServiceStub(channel).RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent=harness.center,
                request_id=str(uuid.uuid4()),
                mode=common_pb2.MODE_TEST,
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                location=_fix(*slot.point()),
            ),
            metadata=center.metadata("APP_USER"),
        )
    forwarded = await harness.wait_for(lambda c: c in harness.forwards(slot, main), 7.0)
    assert forwarded, f"the SOS was not forwarded to the harness peer\n{center.log()[-3000:]}"
    handling = harness.accepted[forwarded[0].request.request_id]
    dispatch = federation_pb2.ForwardedDispatch(
        dispatch=f"{main}/dispatches/d-{uuid.uuid4().hex[:8]}",
        agency="agencies/harness-112",
        agency_kind=common_pb2.AGENCY_KIND_POLICE_112,
        state=dispatch_pb2.DISPATCH_STATE_ACKNOWLEDGED,
        unit_id="harness-unit-1",
    )
    dispatch.update_time.GetCurrentTime()
    events = [
        _event(1, started=federation_pb2.HandlingStarted(reason=federation_pb2.FORWARD_REASON_ROUTED)),
        _event(2, dispatch=dispatch),
    ]

    def mirror() -> federation_pb2.MirrorStatusRequest:
        return federation_pb2.MirrorStatusRequest(
            request_id=str(uuid.uuid4()),
            home_emergency=sos.name,
            handling_emergency=handling,
            mode=common_pb2.MODE_TEST,
            events=events,
        )

    (center.data_dir / MARKER).touch()
    async with center.mtls_channel("PEER_CENTER") as channel:
        stub = federation_pb2_grpc.FederationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.MirrorStatus(mirror(), metadata=center.metadata("PEER_CENTER"), timeout=10)
    assert center.process.wait(15) == EXIT_CODE, "the crash fault did not fire"

    restarted_at = harness.calls[-1].at if harness.calls else 0.0
    center = start_center(center.data_dir, plugins=[PLUGIN])
    centers.append(center)
    await _registry_loaded(harness, after=restarted_at)
    async with center.mtls_channel("PEER_CENTER") as channel:  # the peer resends (FED-023)
        reply = await federation_pb2_grpc.FederationServiceStub(channel).MirrorStatus(
            mirror(), metadata=center.metadata("PEER_CENTER"), timeout=10
        )
    assert reply.last_applied_sequence == 2
    async with center.channel() as channel:
        home = await emergency_pb2_grpc.EmergencyServiceStub(channel).GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=sos.name), metadata=center.metadata("CENTER_OPERATOR")
        )
    shown = [a.dispatch for a in home.dispatched_agencies]
    assert dispatch.dispatch in shown, f"the mirrored dispatch was acknowledged but never applied: {shown}"
    assert home.state == emergency_pb2.EMERGENCY_STATE_DISPATCHED, emergency_pb2.EmergencyState.Name(
        home.state
    )
