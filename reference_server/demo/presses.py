"""SOS presses of a 종로 resident's app, played as spec §10.4 tells an app to (APP-001).

One press is one ``request_id``: the app sends the same RaiseEmergencyRequest again while its home
center answers UNAVAILABLE or DEADLINE_EXCEEDED or cannot be reached (it was killed and a supervisor
is restarting it), until it gets an answer. Each press comes from its own user, so that EMG-004 never
folds two presses into one emergency.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import grpc.aio
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc

from reference_server.demo.cluster import Cluster
from reference_server.demo.console import tls_channel, token

HOME = "seoul-jongno"
#: An attempt's deadline, the pause between attempts and when the app gives up (APP-001).
ATTEMPT_TIMEOUT_S = 2.0
RETRY_PAUSE_S = 0.25
GIVE_UP_S = 20.0
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class Region:
    """Where a press happens and what must become of it: the responsible center and its 112."""

    center_id: str
    label: str
    latitude: float
    longitude: float
    radius_m: float
    police: str

    @property
    def center(self) -> str:
        return f"centers/{self.center_id}"


#: One press location per demo center, each well inside that center's boundary.
REGIONS = (
    Region(HOME, "종로 (home)", 37.5729, 126.9794, 20.0, "agencies/seoul-112"),
    Region("anyang", "안양 (visitor)", 37.4015, 126.9227, 15.0, "agencies/gyeonggi-south-112"),
    Region("seoul-geumcheon", "금천", 37.4569, 126.8955, 20.0, "agencies/seoul-112"),
    Region("busan-haeundae", "해운대", 35.1631, 129.1636, 20.0, "agencies/busan-112"),
)


@dataclass
class Press:
    """One press of SOS and what the app saw of it."""

    region: Region
    request: emergency_pb2.RaiseEmergencyRequest
    user: tuple[tuple[str, str]]
    attempts: int = 0
    began: float = 0.0
    acknowledged: float = 0.0
    emergency: emergency_pb2.Emergency | None = None

    @property
    def name(self) -> str:
        assert self.emergency is not None, "the press was never acknowledged"
        return self.emergency.name

    @property
    def incident_id(self) -> str:
        assert self.emergency is not None, "the press was never acknowledged"
        return self.emergency.incident_id


def new_press(cluster: Cluster, region: Region, tag: str) -> Press:
    """One press: a new user and one request_id, created once and kept for every retry."""
    location = common_pb2.Location(
        latitude=region.latitude,
        longitude=region.longitude,
        radius_m=region.radius_m,
        method=common_pb2.POSITIONING_METHOD_GNSS,
    )
    location.fix_time.FromDatetime(datetime.now(UTC))
    request = emergency_pb2.RaiseEmergencyRequest(
        parent=f"centers/{HOME}",
        request_id=str(uuid.uuid4()),
        kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
        mode=common_pb2.MODE_EXERCISE,
        location=location,
    )
    user = token(cluster, common_pb2.ROLE_APP_USER, f"users/{tag}-{uuid.uuid4().hex[:6]}")
    return Press(region, request, user)


async def send(cluster: Cluster, address: str, press: Press) -> Press:
    """RaiseEmergency at the home center, retried with the same request_id [APP-001]."""
    server_name = cluster.certs_for(HOME).server_name
    press.began = time.monotonic()
    while True:
        press.attempts += 1
        channel = tls_channel(cluster.pki.ca_cert, address, server_name)
        try:
            press.emergency = await emergency_pb2_grpc.EmergencyServiceStub(channel).RaiseEmergency(
                press.request, metadata=press.user, timeout=ATTEMPT_TIMEOUT_S
            )
            press.acknowledged = time.monotonic()
            return press
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or time.monotonic() - press.began > GIVE_UP_S:
                raise
        finally:
            await channel.close(None)
        await asyncio.sleep(RETRY_PAUSE_S)
