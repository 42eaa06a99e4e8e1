"""A tiny service plugin for framework tests: ``ansim.test.Probe/Echo`` (unary, no policy row, so
authenticated callers are denied by default, which is what the tests check)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
from google.protobuf import wrappers_pb2

from reference_server.context import ServerContext

SERVICE = "ansim.test.Probe"


async def echo(request: wrappers_pb2.StringValue, context: Any) -> wrappers_pb2.StringValue:
    return wrappers_pb2.StringValue(value=request.value)


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    handler = grpc.unary_unary_rpc_method_handler(
        echo, wrappers_pb2.StringValue.FromString, wrappers_pb2.StringValue.SerializeToString
    )
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler})])
    return [SERVICE]
