"""The baseline server: a bare grpc.aio echo service (raw bytes in, the same bytes out).

python -m bench.echo CERT KEY   → prints ``ECHO_LISTENING 127.0.0.1:PORT`` and serves until killed

It runs in its own process and over the same kind of TLS listener as the center, so the
comparison isolates what the center adds (interceptors, validation, durable store, events).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio

METHOD = "/bench.Echo/Echo"
#: A bidirectional stream answering every request message with its bytes: grpc.aio's own cost per
#: message read and written, the floor of a one-ack-per-event stream such as IngestTagEvents.
STREAM_METHOD = "/bench.Echo/Stream"


def _identity(b: bytes) -> bytes:
    return b


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def serve(credentials: tuple[bytes, bytes] | None) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo, _identity, _identity),
            "Stream": grpc.stream_stream_rpc_method_handler(_stream, _identity, _identity),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    if credentials is not None:
        creds = grpc.ssl_server_credentials([credentials])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ECHO_LISTENING 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    args = sys.argv[1:]
    key_and_cert = (Path(args[1]).read_bytes(), Path(args[0]).read_bytes()) if len(args) == 2 else None
    asyncio.run(serve(key_and_cert))


if __name__ == "__main__":
    main()
