"""Event streams that write already-serialised messages.

A stored event reaches many streams (a dispatch change every subscription of its agency, a
guardian's alert every device of the guardian). Parsing its stored payload, setting the stream's
cursor and sequence and serialising it again per stream is Python work in the fan-out's hot loop;
instead, a stream yields ``bytes``: the stored payload with the two fields appended on the wire
(:func:`reference_server.events.wire.with_position`).

:func:`add_servicer` registers a servicer through its generated ``add_*Servicer_to_server`` with
the response serializer of the named server-streaming methods passing ``bytes`` through unchanged;
their handlers may still yield messages, which are serialised as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import grpc


def _passing_bytes(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def serializer(message: Any) -> bytes:
        return message if type(message) is bytes else serialize(message)

    return serializer


class _Capture:
    """Stands in for the server while a generated ``add_*Servicer_to_server`` runs."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers arrive through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, dict(handlers)


def add_servicer(
    add: Callable[[Any, Any], None], servicer: object, server: grpc.aio.Server, raw_methods: Collection[str]
) -> None:
    """``add(servicer, server)``, with ``raw_methods`` (unary-request, server-streaming) writing
    ``bytes`` they yield as they are."""
    capture = _Capture()
    add(servicer, capture)
    handlers = capture.handlers
    for name in raw_methods:
        handler = handlers[name]
        if handler.request_streaming or not handler.response_streaming:
            raise ValueError(f"{capture.service}/{name} is not a unary-request response stream")
        handlers[name] = grpc.unary_stream_rpc_method_handler(
            handler.unary_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=_passing_bytes(handler.response_serializer),
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)  # type: ignore[attr-defined]
