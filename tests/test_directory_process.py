"""'ansim serve --role directory' runs only the directory, keeps its entries and keys across a
restart, and runs the directory conformance profile through its own declaration."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc
import grpc.aio
from ansim.v1 import directory_pb2, directory_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reference_server.demo.entries import CENTERS, center_entry
from tests.support.center import start_center


def test_directory_role_serves_only_the_directory_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "directory"
    directory = start_center(data, "--role", "directory")
    entry = center_entry(CENTERS[0], "127.0.0.1:1", "seoul-jongno.centers.ansim.test", ["a" * 64])

    async def register() -> tuple[int, str]:
        async with directory.channel() as channel:
            health = health_pb2_grpc.HealthStub(channel)
            served = await health.Check(health_pb2.HealthCheckRequest(service="ansim.v1.DirectoryService"))
            assert served.status == health_pb2.HealthCheckResponse.SERVING
            try:
                await health.Check(health_pb2.HealthCheckRequest(service="ansim.v1.EmergencyService"))
                raise AssertionError("a directory process serves EmergencyService")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            admin = directory.metadata("DIRECTORY_ADMIN")
            created = await stub.CreateCenter(
                directory_pb2.CreateCenterRequest(center=entry, request_id=str(uuid.uuid4())), metadata=admin
            )
            keys = await stub.GetDirectoryKeys(directory_pb2.GetDirectoryKeysRequest(), metadata=admin)
            return created.revision, keys.keys[0].key_id

    try:
        revision, key_id = asyncio.run(register())
    finally:
        assert directory.terminate() == 0
    again = start_center(data, "--role", "directory")

    async def read() -> None:
        async with again.channel() as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            admin = again.metadata("DIRECTORY_ADMIN")
            got = await stub.GetCenter(directory_pb2.GetCenterRequest(name=entry.name), metadata=admin)
            assert got.revision == revision
            keys = await stub.GetDirectoryKeys(directory_pb2.GetDirectoryKeysRequest(), metadata=admin)
            assert keys.keys[0].key_id == key_id

    try:
        asyncio.run(read())
    finally:
        assert again.terminate() == 0
