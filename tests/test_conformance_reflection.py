"""The suite's reflection client against a server that offers only v1alpha (like grpcio's).

Regression: probing v1 with a request stream raced the server's immediate UNIMPLEMENTED; a write
that lost the race made grpc.aio report INTERNAL "Internal error from Core" instead, so TC_GEN_003
and the pre-flight failed now and then. The probe is now a unary call, so the answer is always the
server's own status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from conformance.reflection import ReflectionUnavailable, files_for_symbols, list_services

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def v1alpha_only() -> AsyncIterator[str]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    reflection.enable_server_reflection([HEALTH, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_many_concurrent_lookups_all_see_v1alpha(v1alpha_only: str) -> None:
    symbols = [HEALTH, reflection.SERVICE_NAME] * 8  # a long request stream widens the old race
    async with grpc.aio.insecure_channel(v1alpha_only) as channel:
        files = asyncio.gather(
            *[files_for_symbols(channel, symbols) for _ in range(40)], return_exceptions=True
        )
        listed = asyncio.gather(*[list_services(channel) for _ in range(40)], return_exceptions=True)
        results = await asyncio.gather(files, listed)
    errors = [r for group in results for r in group if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert all(isinstance(r, dict) and health_pb2.DESCRIPTOR.name in r for r in results[0])
    assert {getattr(r, "api", None) for r in results[1]} == {"grpc.reflection.v1alpha.ServerReflection"}


async def test_no_reflection_is_reported_as_unavailable() -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(ReflectionUnavailable):
                await list_services(channel)
    finally:
        await server.stop(None)
