"""Several "around" interceptors installed as one grpc.aio interceptor.

grpc.aio runs every installed interceptor on every call: each one awaits the next one's
``intercept_service`` and wraps the handler it gets back, so a chain of five builds five handler
objects, five :class:`~reference_server.interceptors.wrapping.Call` descriptions and five nested
wrapper coroutines per call. :class:`InterceptorChain` gives the same nesting (first layer
outermost, each layer's ``around`` sees the same call and notes as before) with one wrap per
method, built once and reused while the server hands out the same handler for that method, and
one ``Call`` per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from reference_server.interceptors.wrapping import AroundInterceptor, Call, Handler, Invoke, wrap_handler


def nest(layers: Sequence[AroundInterceptor]) -> Callable[[Call, Invoke], Awaitable[Any]]:
    """One ``around`` that runs ``layers[0].around`` outermost, down to the handler."""
    arounds = tuple(layer.around for layer in layers)
    depth = len(arounds)

    async def around(call: Call, invoke: Invoke) -> Any:
        def step(i: int) -> Awaitable[Any]:
            if i == depth:
                return invoke()
            return arounds[i](call, lambda: step(i + 1))

        return await step(0)

    return around


class InterceptorChain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """``layers`` (outermost first) as one interceptor; wrapped handlers are cached per method."""

    def __init__(self, layers: Sequence[AroundInterceptor]) -> None:
        self.layers = tuple(layers)
        self._around = nest(self.layers)
        #: method → (the handler the server gave, its wrapped version)
        self._wrapped: dict[str, tuple[Handler, Handler | None]] = {}

    def wrap(self, handler: Handler, method: str) -> Handler | None:
        """``handler`` prepared by every layer (innermost first), then wrapped once."""
        for layer in reversed(self.layers):
            handler = layer.prepare(handler)
        return wrap_handler(handler, method, self._around)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]  # type: ignore[return-value]
        wrapped = self.wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped  # type: ignore[return-value]
