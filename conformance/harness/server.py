"""The harness center: a grpc.aio server that plays the server side of the rpcs a client profile
uses, records every call (conformance.harness.recording), answers as the standard says, and injects
faults when its scenario says so.

Handlers are registered as generic handlers (not generated servicers) so that the harness controls
serialization: every response carries fields the standard does not define [GEN-004]. Requests are
validated with protovalidate as they arrive; a request that breaks its rules is recorded with its
violations [GEN-031] but answered as if it were valid, so that one defect of a client shows up in
the cases about it and does not derail the rest of the scenario.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import Message

from conformance.harness.faults import Fault
from conformance.harness.recording import Call, Recording
from conformance.harness.scenario import Scenario
from conformance.recorder import metadata_dict
from conformance.wire import append_unknown_fields

log = logging.getLogger(__name__)

#: The center the harness pretends to be.
CENTER = "centers/harness"

Context = grpc.aio.ServicerContext[Any, Any]
Unary = Callable[[Call, Message, Context], Awaitable[Message]]
Streaming = Callable[[Call, Context], Awaitable[None]]


def serialize(message: Message) -> bytes:
    """A response with unknown fields appended (a newer center's message) [GEN-004]."""
    return append_unknown_fields(message.SerializeToString())


@dataclass(frozen=True)
class Rpc:
    service: str
    name: str
    request: type[Message]
    #: unary, client_stream, server_stream or bidi.
    kind: str


class HarnessCenter:
    """Base of the role centers: recording, faults, per-rpc call counts, stream helpers."""

    role = ""
    rpcs: tuple[Rpc, ...] = ()

    def __init__(self, recording: Recording) -> None:
        self.rec = recording
        self.scenario: Scenario
        self.changed = asyncio.Condition()
        self.listener = "main"
        #: One-shot faults armed through the control API: rpc → faults for its next calls.
        self.armed: dict[str, list[Fault]] = {}

    # --- helpers for role centers -------------------------------------------------------------

    def count(self, rpc: str) -> int:
        return len(self.rec.of(rpc))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()
        self.scenario.poll()

    async def wait_for(self, predicate: Callable[[], bool], within_s: float) -> bool:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)

        try:
            await asyncio.wait_for(wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def write(self, call: Call, context: Context, message: Message) -> None:
        self.rec.send(call, message)
        await context.write(message)
        await self.notify()

    async def read(self, call: Call, context: Context) -> Message | None:
        message = await context.read()
        if message is grpc.aio.EOF:  # type: ignore[attr-defined]
            return None
        assert isinstance(message, Message)
        self.rec.receive(call, message)
        await self.notify()
        return message

    def untrusted(self) -> HarnessCenter:
        """A view of this center for the untrusted listener: records and refuses every call."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.listener = "untrusted"
        return clone

    # --- wiring ------------------------------------------------------------------------------

    def handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
        for rpc in self.rpcs:
            by_service.setdefault(rpc.service, {})[rpc.name] = self._handler(rpc)
        return [grpc.method_handlers_generic_handler(s, m) for s, m in by_service.items()]

    def _open(self, rpc: Rpc, context: Context) -> Call:
        return self.rec.open(
            rpc.service, rpc.name, metadata_dict(context.invocation_metadata()), self.listener
        )

    async def _finish(self, call: Call, context: Context, body: Awaitable[Any]) -> Any:
        try:
            armed = self.armed.get(call.rpc)
            if armed:
                if asyncio.iscoroutine(body):
                    body.close()
                raise armed.pop(0)
            result = await body
        except Fault as fault:
            call.faults.append(fault.describe())
            call.retry_delay_s = fault.retry_delay_s
            self.rec.close(call, fault.code.name, fault.message)
            await self.notify()
            status = fault.status()
            await context.abort(status.code, status.details, status.trailing_metadata)
        except asyncio.CancelledError:
            self.rec.close(call, "CANCELLED", "the client cancelled the call")
            await self.notify()
            raise
        if isinstance(result, Message):
            self.rec.send(call, result)
        self.rec.close(call, "OK")
        await self.notify()
        return result

    def _handler(self, rpc: Rpc) -> grpc.RpcMethodHandler[Any, Any]:
        method = getattr(self, rpc.name)
        refuse = self.listener == "untrusted"

        if rpc.kind == "unary":

            async def unary(request: Message, context: Context) -> Message:
                call = self._open(rpc, context)
                self.rec.receive(call, request)
                if refuse:
                    return await self._finish(call, context, self._refuse())  # type: ignore[no-any-return]
                return await self._finish(call, context, method(call, request, context))  # type: ignore[no-any-return]

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=rpc.request.FromString, response_serializer=serialize
            )

        async def streaming(request_or_iterator: Any, context: Context) -> None:
            call = self._open(rpc, context)
            if rpc.kind == "server_stream":
                self.rec.receive(call, request_or_iterator)
            if refuse:
                await self._finish(call, context, self._refuse())
                return
            body = (
                method(call, request_or_iterator, context)
                if rpc.kind == "server_stream"
                else method(call, context)
            )
            await self._finish(call, context, body)

        if rpc.kind == "server_stream":
            return grpc.unary_stream_rpc_method_handler(
                streaming, request_deserializer=rpc.request.FromString, response_serializer=serialize
            )
        return grpc.stream_stream_rpc_method_handler(
            streaming, request_deserializer=rpc.request.FromString, response_serializer=serialize
        )

    def catch_all(self) -> grpc.GenericRpcHandler[Any, Any]:
        """On the untrusted listener: record a call of any other method too, then refuse it."""
        center = self

        class CatchAll(grpc.GenericRpcHandler):  # type: ignore[type-arg]
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
                method = str(details.method)
                service, _, name = method.strip("/").rpartition("/")

                async def refuse(request: bytes, context: Context) -> bytes:
                    call = center.rec.open(
                        service, name, metadata_dict(context.invocation_metadata()), "untrusted"
                    )
                    return await center._finish(call, context, center._refuse())  # type: ignore[no-any-return]

                return grpc.unary_unary_rpc_method_handler(refuse)

        return CatchAll()

    async def _refuse(self) -> Message:
        from conformance.harness.faults import unavailable

        raise unavailable("untrusted listener: a client must never get this far [SEC-004]")


class HarnessServer:
    """The grpc.aio server(s) of one harness center: the main listener, and with TLS a second
    listener whose certificate no client may accept (SEC-004)."""

    def __init__(
        self,
        center: HarnessCenter,
        listen: str,
        credentials: grpc.ServerCredentials | None,
        untrusted_credentials: grpc.ServerCredentials | None = None,
        untrusted_listen: str | None = None,
    ) -> None:
        self.center = center
        self.listen = listen
        self.credentials = credentials
        self.untrusted_credentials = untrusted_credentials
        self.untrusted_listen = untrusted_listen
        self.port = 0
        self.untrusted_port = 0
        self._servers: list[grpc.aio.Server] = []

    async def start(self) -> None:
        options = [("grpc.so_reuseport", 0)]
        main = grpc.aio.server(options=options)
        main.add_generic_rpc_handlers(self.center.handlers())
        if self.credentials is None:
            self.port = main.add_insecure_port(self.listen)
        else:
            self.port = main.add_secure_port(self.listen, self.credentials)
        await main.start()
        self._servers.append(main)
        if self.untrusted_credentials is not None and self.untrusted_listen is not None:
            other = grpc.aio.server(options=options)
            untrusted = self.center.untrusted()
            other.add_generic_rpc_handlers([*untrusted.handlers(), untrusted.catch_all()])
            self.untrusted_port = other.add_secure_port(self.untrusted_listen, self.untrusted_credentials)
            await other.start()
            self._servers.append(other)

    async def stop(self, grace: float = 0.5) -> None:
        await asyncio.gather(*(s.stop(grace) for s in self._servers), return_exceptions=True)
        self._servers.clear()
