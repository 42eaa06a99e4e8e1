"""A small gRPC server-reflection client (v1, falling back to v1alpha; the messages are identical)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as r

V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


class ReflectionUnavailable(Exception):
    """The target offers neither reflection v1 nor v1alpha."""


@dataclass(frozen=True)
class Reflected:
    api: str
    services: tuple[str, ...]


async def _served_api(channel: grpc.aio.Channel, wait_s: float) -> tuple[str, r.ServerReflectionResponse]:
    """The reflection method the target serves (v1 preferred) and its answer to ``list_services``.

    The probe is a unary call on the wire (one request, half-close, one response), which a
    bidirectional reflection method answers like any other. It must not stream: an UNIMPLEMENTED
    method ends the call as soon as its headers arrive, a request written after that fails, and
    grpc.aio then replaces the server's UNIMPLEMENTED with INTERNAL "Internal error from Core"
    (grpc/grpc#36066) — which would make a v1alpha-only server look broken. A unary call sends its
    message in the same batch as its headers, so the server's status is always the one reported.
    """
    last: grpc.aio.AioRpcError | None = None
    for path in (V1, V1ALPHA):
        probe = channel.unary_unary(
            path,
            request_serializer=r.ServerReflectionRequest.SerializeToString,
            response_deserializer=r.ServerReflectionResponse.FromString,
        )
        try:
            response = await probe(r.ServerReflectionRequest(list_services=""), timeout=wait_s)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            last = error
            continue
        return path, response
    raise ReflectionUnavailable(f"no server reflection (v1 or v1alpha): {last.details() if last else ''}")


async def _exchange(
    channel: grpc.aio.Channel, requests: Sequence[r.ServerReflectionRequest], wait_s: float
) -> tuple[str, list[r.ServerReflectionResponse]]:
    path, _ = await _served_api(channel, wait_s)
    multicallable = channel.stream_stream(
        path,
        request_serializer=r.ServerReflectionRequest.SerializeToString,
        response_deserializer=r.ServerReflectionResponse.FromString,
    )
    call = multicallable(iter(requests), timeout=wait_s)
    return path.split("/")[1], [response async for response in call]


async def list_services(channel: grpc.aio.Channel, wait_s: float = 10.0) -> Reflected:
    path, response = await _served_api(channel, wait_s)
    if response.HasField("error_response"):
        raise ReflectionUnavailable(f"list_services failed: {response.error_response.error_message}")
    names = [s.name for s in response.list_services_response.service]
    return Reflected(path.split("/")[1], tuple(sorted(names)))


async def files_for_symbols(
    channel: grpc.aio.Channel, symbols: Sequence[str], wait_s: float = 10.0
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """File name → FileDescriptorProto of every file the target sends for ``symbols`` (with the
    dependencies it includes)."""
    requests = [r.ServerReflectionRequest(file_containing_symbol=s) for s in symbols]
    _, responses = await _exchange(channel, requests, wait_s)
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for response in responses:
        if response.HasField("error_response"):
            raise LookupError(
                f"reflection could not resolve {response.original_request.file_containing_symbol}: "
                f"{response.error_response.error_message}"
            )
        for blob in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
            files[proto.name] = proto
    # A server may send a file without its dependencies: fetch those by name.
    for _ in range(8):
        missing = sorted({dep for f in files.values() for dep in f.dependency} - set(files))
        if not missing:
            break
        _, responses = await _exchange(
            channel, [r.ServerReflectionRequest(file_by_filename=name) for name in missing], wait_s
        )
        for response in responses:
            for blob in response.file_descriptor_response.file_descriptor_proto:
                proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
                files[proto.name] = proto
            if response.HasField("error_response"):  # unresolvable: stop asking for it
                files[response.original_request.file_by_filename] = descriptor_pb2.FileDescriptorProto()
    return files
