"""Reference-only: an acknowledged SOS survives kill -9 of the center (EMG-001).

50 reporters press SOS at once; the center process is killed with SIGKILL while the burst is in
flight. Every RaiseEmergency that got a response must be there after a restart on the same data
directory, with the same incident id, and a retry with the same request_id must return it again
(the idempotency record survived with it).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import pytest
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc
from google.protobuf import timestamp_pb2

from reference_server.security.tokens import TokenIssuer
from tests.support.center import CenterProcess, start_center

pytestmark = pytest.mark.asyncio(loop_scope="session")

BURST = 50
KILL_AFTER = 15  # acknowledged responses before the SIGKILL


def _request(request_id: str) -> emergency_pb2.RaiseEmergencyRequest:
    fix_time = timestamp_pb2.Timestamp()
    fix_time.FromDatetime(datetime.now(UTC))
    return emergency_pb2.RaiseEmergencyRequest(
        parent="centers/demo",
        request_id=request_id,
        mode=common_pb2.MODE_TEST,
        kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
        location=common_pb2.Location(latitude=37.5729, longitude=126.9794, radius_m=15, fix_time=fix_time),
    )


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_acknowledged_sos_survives_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "center"
    center = start_center(data_dir)
    issuer = TokenIssuer.create("ansim-demo", data_dir / "pki" / "token-issuer.key")
    users = [issuer.issue(f"users/burst-{i}", common_pb2.ROLE_APP_USER) for i in range(BURST)]
    requests = [_request(str(uuid.uuid4())) for _ in range(BURST)]
    acknowledged: dict[int, emergency_pb2.Emergency] = {}
    enough = asyncio.Event()

    async with center.channel() as channel:
        stub = emergency_pb2_grpc.EmergencyServiceStub(channel)

        async def press(i: int) -> None:
            try:
                acknowledged[i] = await stub.RaiseEmergency(
                    requests[i], metadata=_bearer(users[i]), timeout=20
                )
            except grpc.aio.AioRpcError:
                return  # not acknowledged: the app would retry with the same request_id
            if len(acknowledged) >= KILL_AFTER:
                enough.set()

        burst = [asyncio.create_task(press(i)) for i in range(BURST)]
        await asyncio.wait_for(enough.wait(), 30)
        center.process.kill()  # SIGKILL: no graceful shutdown, no flush
        center.process.wait()
        await asyncio.gather(*burst)

    assert len(acknowledged) >= KILL_AFTER
    restarted: CenterProcess = start_center(data_dir)
    try:
        async with restarted.channel() as channel:
            stub = emergency_pb2_grpc.EmergencyServiceStub(channel)
            operator = _bearer(restarted.token("CENTER_OPERATOR"))
            for i, emergency in acknowledged.items():
                stored = await stub.GetEmergency(
                    emergency_pb2.GetEmergencyRequest(name=emergency.name), metadata=operator
                )
                assert stored.incident_id == emergency.incident_id
                assert stored.state == emergency_pb2.EMERGENCY_STATE_RAISED
                again = await stub.RaiseEmergency(requests[i], metadata=_bearer(users[i]), timeout=10)
                assert (again.name, again.incident_id) == (emergency.name, emergency.incident_id)
            listed = await stub.ListEmergencies(
                emergency_pb2.ListEmergenciesRequest(
                    parent="centers/demo", mode=common_pb2.MODE_TEST, page_size=100
                ),
                metadata=operator,
            )
            names = [e.name for e in listed.emergencies]
            assert len(names) == len(set(names))
            assert {e.name for e in acknowledged.values()} <= set(names)
    finally:
        assert restarted.terminate() == 0
