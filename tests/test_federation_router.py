"""Resolving with the directory's answers: cache within the boundary, expiry, stale use, unresolvable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from ansim.v1 import common_pb2, directory_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc.aio import AioRpcError, Metadata

from reference_server.clock import OffsetClock
from reference_server.domain.directory.geometry import geometry_area, metric_circle
from reference_server.domain.directory.signing import public_key_bytes, sign_answer, verify_answer
from reference_server.domain.federation.router import Router

AREA = geometry_area(metric_circle(37.40, 126.92, 3000.0))


class FakeDirectory:
    def __init__(self, clock: OffsetClock) -> None:
        self.clock = clock
        self.calls = 0
        self.down = False
        self.private = Ed25519PrivateKey.generate()
        key = directory_pb2.DirectoryKey(
            key_id="k",
            algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519,
            public_key=public_key_bytes(self.private),
        )
        key.not_before.FromDatetime(datetime(2020, 1, 1, tzinfo=UTC))
        key.not_after.FromDatetime(datetime(2099, 1, 1, tzinfo=UTC))
        self.keys = [key]

    async def resolve(
        self, location: common_pb2.Location, service: str
    ) -> directory_pb2.ResolveCenterResponse:
        self.calls += 1
        if self.down:
            raise AioRpcError(
                grpc.StatusCode.UNAVAILABLE, Metadata(), Metadata(), details="down", debug_error_string=""
            )
        now = self.clock.now()
        answer = directory_pb2.ResolveCenterAnswer(location=location, service=service, service_boundary=AREA)
        answer.candidates.add(center="centers/anyang", match=directory_pb2.CANDIDATE_MATCH_CONTAINS)
        answer.resolve_time.FromDatetime(now)
        answer.expire_time.FromDatetime(now + timedelta(hours=24))
        return sign_answer(answer, "k", self.private)

    async def verify(
        self, response: directory_pb2.ResolveCenterResponse
    ) -> directory_pb2.ResolveCenterAnswer:
        return verify_answer(response, self.keys)


def _loc(lat: float, lon: float, radius: float) -> common_pb2.Location:
    return common_pb2.Location(
        latitude=lat, longitude=lon, radius_m=radius, method=common_pb2.POSITIONING_METHOD_GNSS
    )


def _router() -> tuple[Router, FakeDirectory, OffsetClock]:
    clock = OffsetClock()
    fake = FakeDirectory(clock)
    directory: Any = fake
    return Router(directory, clock), fake, clock


def test_cache_is_used_only_inside_the_boundary_and_before_expiry() -> None:
    router, fake, clock = _router()

    async def run() -> None:
        first = await router.resolve(_loc(37.40, 126.92, 20))
        assert first.source == "directory" and first.candidates == ["centers/anyang"]
        inside = await router.resolve(_loc(37.401, 126.921, 30))
        assert inside.source == "cache" and fake.calls == 1
        crossing = await router.resolve(_loc(37.40, 126.92, 5000))  # the circle leaves the boundary
        assert crossing.source == "directory" and fake.calls == 2
        clock.advance(timedelta(hours=25))  # expired
        await router.resolve(_loc(37.40, 126.92, 20))
        assert fake.calls == 3

    asyncio.run(run())


def test_stale_answer_while_the_directory_is_down_for_72_hours_then_unresolvable() -> None:
    router, fake, clock = _router()

    async def run() -> None:
        await router.resolve(_loc(37.40, 126.92, 20))
        fake.down = True
        clock.advance(timedelta(hours=24 + 71))
        stale = await router.resolve(_loc(37.40, 126.92, 20))
        assert stale.source == "stale" and stale.candidates == ["centers/anyang"]
        clock.advance(timedelta(hours=2))  # more than 72 h past expiry
        gone = await router.resolve(_loc(37.40, 126.92, 20))
        assert gone.source == "unresolvable" and gone.candidates == []

    asyncio.run(run())


def test_an_answer_that_does_not_verify_is_treated_as_unreachable() -> None:
    router, fake, _ = _router()
    fake.keys = [
        directory_pb2.DirectoryKey(
            key_id="k", public_key=bytes(32), algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519
        )
    ]
    fake.keys[0].not_before.FromDatetime(datetime(2020, 1, 1, tzinfo=UTC))
    fake.keys[0].not_after.FromDatetime(datetime(2099, 1, 1, tzinfo=UTC))
    result = asyncio.run(router.resolve(_loc(37.40, 126.92, 20)))
    assert result.source == "unresolvable"
