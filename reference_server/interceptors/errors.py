"""Error mapping: domain exceptions become rich statuses; anything else becomes INTERNAL, logged.

:class:`ansim_sdk.errors.AnsimError` (and subclasses such as ``InvalidArgument``) raised anywhere
below this interceptor (auth, servicer, domain code, store) ends the call with its rich status.
Any other exception ends it with INTERNAL / reason INTERNAL and a generic message (details go to
the log only), so a bug never crashes the server or leaves a call hanging. Requests that cannot be
parsed end with INVALID_ARGUMENT / MALFORMED_MESSAGE.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import error_pb2
from google.protobuf.message import DecodeError

from ansim_sdk.errors import AnsimError, abort
from reference_server.interceptors.wrapping import AroundInterceptor, Call, Handler, Invoke

log = logging.getLogger("ansim.errors")


class Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, TypeError) as error:
            return Malformed(error)

    return deserialize


def _malformed() -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_MALFORMED_MESSAGE, "the request could not be parsed")


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in requests:
        if isinstance(item, Malformed):
            raise _malformed()
        yield item


class ErrorMappingInterceptor(AroundInterceptor):
    async def around(self, call: Call, invoke: Invoke) -> Any:
        try:
            if isinstance(call.request, Malformed):
                raise _malformed()
            if call.request_streaming:
                call.requests = _checked(call.requests)
            return await invoke()
        except AnsimError as error:
            await abort(call.context, error)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("unexpected error in %s", call.method)
            await abort(
                call.context,
                AnsimError(
                    error_pb2.ERROR_REASON_INTERNAL, "internal error; nothing was written, retry is safe"
                ),
            )

    def prepare(self, handler: Handler) -> Handler:
        """Requests that do not parse reach :meth:`around` as :class:`Malformed`."""
        return handler._replace(request_deserializer=_safe(handler.request_deserializer))  # type: ignore[attr-defined,no-any-return]
