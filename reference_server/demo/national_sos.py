"""The SOS traffic of the national simulation and its check against ground truth.

Each SOS is a real app's: a random home center, an APP_USER token, ``RaiseEmergency`` in
MODE_EXERCISE (a demonstration, APP-007) at the home center's EmergencyService over TLS, from a
random point inside a random municipality. The home center resolves it with the directory and
forwards it over federation gRPC (mutual TLS) [FED-012]. Ground truth is the municipality whose
original 2018 boundary contains the point (shapely, independent of the directory's index).

An SOS counts as routed right when the home center's view names the ground-truth center as handling
center and that center holds the incident with a 112 dispatch to its own situation room. Latencies
come from the centers' own timestamps (one machine, one clock), so polling does not distort them:
routing = RAISED at home → accepted at the responsible center (resolution, pin check, forward); end
to end = the app's RaiseEmergency call → 112 dispatch requested at the responsible center.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc.aio
import numpy as np
import shapely
from ansim.v1 import common_pb2, emergency_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from reference_server.geo.municipalities import Municipality
from reference_server.geo.sampling import random_points_in

POLL_S = 0.1
SETTLE_TIMEOUT_S = 20.0
FIX_RADIUS_M = 10.0


@dataclass(frozen=True)
class Sos:
    """One planned SOS: who raises it where, and who must handle it."""

    index: int
    home: str  # statistics code of the home center's municipality
    lat: float
    lon: float
    truth: str  # statistics code of the municipality containing the point ("" if none)


@dataclass
class Outcome:
    sos: Sos
    handled_by: str = ""  # center name the home center shows as handling
    dispatched_to: str = ""  # 112 agency dispatched at the handling center
    routing_s: float | None = None  # RAISED at home → accepted at the responsible center (forwarded)
    end_to_end_s: float | None = None  # raise → dispatch requested at the responsible center
    error: str = ""

    @property
    def forwarded(self) -> bool:
        return self.sos.home != self.sos.truth

    @property
    def correct(self) -> bool:
        truth = self.sos.truth
        return (
            not self.error
            and self.handled_by == center_name(truth)
            and self.dispatched_to == police_agency(truth)
        )


def center_id(code: str) -> str:
    return f"m{code}"


def center_name(code: str) -> str:
    return f"centers/{center_id(code)}"


def police_agency(code: str) -> str:
    return f"agencies/{center_id(code)}-112"


def fire_agency(code: str) -> str:
    return f"agencies/{center_id(code)}-119"


def plan(municipalities: dict[str, Municipality], codes: list[str], count: int, seed: int) -> list[Sos]:
    """``count`` seeded SOS: a random home among ``codes``, a random point in a random one of
    ``codes``, and the ground truth looked up among *all* municipalities."""
    rng = np.random.default_rng(seed)
    every = sorted(municipalities)
    tree = shapely.STRtree([municipalities[c].geometry for c in every])
    planned: list[Sos] = []
    for index in range(count):
        home = codes[int(rng.integers(len(codes)))]
        where = codes[int(rng.integers(len(codes)))]
        lons, lats = random_points_in(municipalities[where].geometry, 1, rng)
        point = shapely.Point(float(lons[0]), float(lats[0]))
        hits = [every[int(i)] for i in tree.query(point, predicate="within")]
        planned.append(Sos(index, home, float(lats[0]), float(lons[0]), hits[0] if len(hits) == 1 else ""))
    return planned


def _seconds(stamp: Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


class Simulator:
    """Raises the planned SOS against the running centers and checks each one.

    ``stub_for(code)`` gives the EmergencyService stub of a center (TLS), ``app_token(subject)`` and
    ``operator_token(code)`` the metadata of an app user and of a center's operator.
    """

    def __init__(
        self,
        stub_for: Callable[[str], Any],
        app_token: Callable[[str], tuple[tuple[str, str]]],
        operator_token: Callable[[str], tuple[tuple[str, str]]],
    ) -> None:
        self.stub_for = stub_for
        self.app_token = app_token
        self.operator_token = operator_token

    async def run(self, sos: Sos) -> Outcome:
        outcome = Outcome(sos)
        try:
            await self._run(sos, outcome)
        except Exception as error:  # reported per SOS; one failure does not hide the others
            detail = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
            outcome.error = f"{type(error).__name__}: {detail}"
        return outcome

    async def _run(self, sos: Sos, outcome: Outcome) -> None:
        location = common_pb2.Location(
            latitude=sos.lat,
            longitude=sos.lon,
            radius_m=FIX_RADIUS_M,
            method=common_pb2.POSITIONING_METHOD_GNSS,
        )
        location.fix_time.GetCurrentTime()
        raised_at = time.time()
        created: emergency_pb2.Emergency = await self.stub_for(sos.home).RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent=center_name(sos.home),
                request_id=str(uuid.uuid4()),
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                mode=common_pb2.MODE_EXERCISE,  # a demonstration, never LIVE [APP-007]
                location=location,
            ),
            metadata=self.app_token(f"users/national-{sos.index}"),
            timeout=5,
        )
        home_view = await self._settle(
            lambda: self._home_view(sos.home, created.name), "a handling center at home"
        )
        outcome.handled_by = home_view.handling_center
        handler = outcome.handled_by.removeprefix("centers/m")
        held = await self._settle(
            lambda: self._dispatched_at(handler, created.incident_id), f"a dispatch at {outcome.handled_by}"
        )
        police = [a for a in held.dispatched_agencies if a.agency_kind == common_pb2.AGENCY_KIND_POLICE_112]
        if not police:
            raise AssertionError(f"no 112 dispatch at {outcome.handled_by}")
        outcome.dispatched_to = police[0].agency
        outcome.end_to_end_s = _seconds(police[0].request_time) - raised_at
        if handler != sos.home:
            home_raised = created.raise_time if created.HasField("raise_time") else created.create_time
            outcome.routing_s = _seconds(held.create_time) - _seconds(home_raised)

    async def _home_view(self, home: str, name: str) -> emergency_pb2.Emergency | None:
        seen: emergency_pb2.Emergency = await self.stub_for(home).GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=name), metadata=self.operator_token(home), timeout=5
        )
        # Final once forwarded (another center handles it) or dispatched here (handled at home).
        settled = seen.handling_center not in ("", center_name(home)) or bool(seen.dispatched_agencies)
        return seen if settled else None

    async def _dispatched_at(self, code: str, incident: str) -> emergency_pb2.Emergency | None:
        reply = await self.stub_for(code).ListEmergencies(
            emergency_pb2.ListEmergenciesRequest(parent=center_name(code), incident_id=incident),
            metadata=self.operator_token(code),
            timeout=5,
        )
        return next((e for e in reply.emergencies if e.dispatched_agencies), None)

    async def _settle(self, probe: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            got = await probe()
            if got is not None:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not appear within {SETTLE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(POLL_S)
