"""Wrap any of the four kinds of grpc.aio method handlers with one "around" coroutine.

An interceptor supplies ``around(call, invoke)``: ``call`` describes the RPC (method, context, the
request for unary-request methods) and ``invoke()`` runs the next layer. For response-streaming
methods ``invoke()`` returns once the whole stream has been produced; the messages themselves flow
through untouched. Handlers may be coroutine functions (unary responses, or streams written with
``context.write``) or async generator functions.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import grpc.aio

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass
class Call:
    """One RPC as an interceptor sees it."""

    method: str
    context: Context
    #: The request message for unary-request methods; None for client-streaming methods.
    request: Any
    #: The request message iterator of client-streaming methods (None otherwise). An interceptor may
    #: replace it, e.g. with a generator that checks each message, before calling ``invoke()``.
    requests: Any
    request_streaming: bool
    response_streaming: bool
    #: Free-form per-call notes shared between interceptors (e.g. the caller subject for logs).
    notes: dict[str, Any]


Invoke = Callable[[], Awaitable[Any]]
Around = Callable[[Call, Invoke], Awaitable[Any]]


_call_notes: contextvars.ContextVar[tuple[Context, dict[str, Any]] | None] = contextvars.ContextVar(
    "ansim_call_notes", default=None
)


def _notes(context: Context) -> dict[str, Any]:
    """Per-call notes shared by every interceptor of the call. All layers of one call run in the
    same task, so a context variable keyed by the call's context object carries them."""
    current = _call_notes.get()
    if current is not None and current[0] is context:
        return current[1]
    notes: dict[str, Any] = {}
    _call_notes.set((context, notes))
    return notes


async def _drain(result: Any, sink: Callable[[Any], Awaitable[None]] | None) -> Any:
    """Await a coroutine result or forward an async generator's items to ``sink``."""
    if inspect.isasyncgen(result):
        assert sink is not None
        try:
            async for item in result:
                await sink(item)
        finally:
            await result.aclose()
        return None
    if inspect.isawaitable(result):
        return await result
    return result


def wrap_handler(handler: Handler | None, method: str, around: Around) -> Handler | None:
    """A handler equivalent to ``handler`` with ``around`` wrapped about every call."""
    if handler is None:
        return None
    req_stream, resp_stream = handler.request_streaming, handler.response_streaming
    behavior: Any = (
        handler.stream_stream if req_stream and resp_stream
        else handler.stream_unary if req_stream
        else handler.unary_stream if resp_stream
        else handler.unary_unary
    )  # fmt: skip

    def describe(request: Any, context: Context) -> Call:
        if req_stream:
            return Call(method, context, None, request, req_stream, resp_stream, _notes(context))
        return Call(method, context, request, None, req_stream, resp_stream, _notes(context))

    def start(call: Call) -> Any:
        return behavior(call.requests if req_stream else call.request, call.context)

    if not resp_stream:

        async def unary_response(request: Any, context: Context) -> Any:
            call = describe(request, context)
            return await around(call, lambda: _drain(start(call), None))

        factory = grpc.stream_unary_rpc_method_handler if req_stream else grpc.unary_unary_rpc_method_handler
        return factory(unary_response, handler.request_deserializer, handler.response_serializer)

    async def streaming_response(request: Any, context: Context) -> None:
        # The wrapped handler uses grpc's reader/writer style (a coroutine writing with
        # context.write), so ``around`` sees the whole stream, and any error raised while
        # streaming, inside its own frame.
        call = describe(request, context)

        async def invoke() -> None:
            await _drain(start(call), context.write)

        await around(call, invoke)

    factory = grpc.stream_stream_rpc_method_handler if req_stream else grpc.unary_stream_rpc_method_handler
    return factory(streaming_response, handler.request_deserializer, handler.response_serializer)


class AroundInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Base class: subclasses implement :meth:`around`; all four handler kinds are covered."""

    async def around(self, call: Call, invoke: Invoke) -> Any:
        return await invoke()

    def prepare(self, handler: Handler) -> Handler:
        """The handler this layer wraps, e.g. with another request deserializer (default: as is)."""
        return handler

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap_handler(self.prepare(handler), handler_call_details.method, self.around)  # type: ignore[return-value]
