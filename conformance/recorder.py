"""The wire log: every call a case makes, as an :class:`Exchange`, captured by client interceptors.

The runner binds a fresh log to each case's task (:func:`bind_log`); the interceptors on every
channel append to whatever log the calling task is bound to, so a case never passes a log around.
Secrets (the ``authorization`` header) are redacted before they are stored.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from google.protobuf import json_format
from google.protobuf.message import Message

from conformance.wire import ParsedError, parse_error

if TYPE_CHECKING:  # the interceptor base classes are generic only in the type stubs
    _UU = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _US = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _SU = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _SS = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UU = grpc.aio.UnaryUnaryClientInterceptor
    _US = grpc.aio.UnaryStreamClientInterceptor
    _SU = grpc.aio.StreamUnaryClientInterceptor
    _SS = grpc.aio.StreamStreamClientInterceptor

REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset({"authorization"})


@dataclass
class Exchange:
    """One call as it went over the wire."""

    method: str
    #: The request: proto3 JSON for a message, ``{"raw_base64": …, "length": n}`` for raw bytes,
    #: ``{"stream": true}`` for a client stream.
    request: Any
    request_metadata: dict[str, str] = field(default_factory=dict)
    #: OK, or the status code name (``UNAUTHENTICATED``).
    code: str = "PENDING"
    details: str = ""
    response: Any = None
    #: Messages read from a server stream through CaseContext.read_stream.
    stream_responses: list[Any] = field(default_factory=list)
    initial_metadata: dict[str, str] = field(default_factory=dict)
    trailing_metadata: dict[str, str] = field(default_factory=dict)
    error: ParsedError | None = None
    elapsed_s: float = 0.0
    #: Which credentials the call used, e.g. ``role CENTER_OPERATOR`` or ``no token``.
    identity: str = ""

    def summary(self) -> str:
        reason = f" {self.error.reason}" if self.error and self.error.reason else ""
        return f"{self.method} → {self.code}{reason} ({self.elapsed_s * 1000:.0f} ms)"

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] | None = None
        if self.error is not None:
            error = {
                "code": self.error.code.name,
                "message": self.error.message,
                "reason": self.error.reason,
                "domain": self.error.domain,
                "error_info_count": self.error.error_info_count,
                "has_rich_status": self.error.has_rich_status,
                "field_violations": [
                    {"field": v.field, "description": v.description, "requirement": v.requirement}
                    for v in self.error.field_violations
                ],
                "retry_delay_s": self.error.retry_delay.total_seconds() if self.error.retry_delay else None,
            }
        return {
            "method": self.method,
            "identity": self.identity,
            "request": self.request,
            "request_metadata": self.request_metadata,
            "code": self.code,
            "details": self.details,
            "response": self.response,
            "stream_responses": self.stream_responses,
            "initial_metadata": self.initial_metadata,
            "trailing_metadata": self.trailing_metadata,
            "error": error,
            "elapsed_s": round(self.elapsed_s, 6),
        }


_current: contextvars.ContextVar[list[Exchange] | None] = contextvars.ContextVar(
    "conformance_exchange_log", default=None
)


@contextmanager
def bind_log(log: list[Exchange]) -> Iterator[None]:
    """Record the calls of the current task (and tasks it starts) into ``log``."""
    token = _current.set(log)
    try:
        yield
    finally:
        _current.reset(token)


def current_log() -> list[Exchange]:
    """The log bound to the current task; a throw-away list outside a case."""
    log = _current.get()
    return log if log is not None else []


def to_json(value: Any) -> Any:
    """A message as proto3 JSON (a dict), bytes as base64, anything else as its repr."""
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=False)
    if isinstance(value, bytes):
        return {"raw_base64": base64.b64encode(value).decode("ascii"), "length": len(value)}
    if value is None:
        return None
    return repr(value)


def metadata_dict(metadata: Any) -> dict[str, str]:
    """Metadata as a dict (repeated keys joined by ', '), secrets redacted, binary values as base64."""
    out: dict[str, str] = {}
    for key, value in metadata or ():
        key = str(key).lower()
        if key in _SECRET_HEADERS:
            text = REDACTED
        elif isinstance(value, bytes):
            text = base64.b64encode(value).decode("ascii")
        else:
            text = str(value)
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _with_token(details: grpc.aio.ClientCallDetails, token: str | None) -> grpc.aio.ClientCallDetails:
    """The call details with ``authorization: Bearer <token>`` added (unless the call has one)."""
    if token is None:
        return details
    pairs = list(details.metadata or ())
    if any(str(k).lower() == "authorization" for k, _ in pairs):
        return details
    pairs.append(("authorization", f"Bearer {token}"))
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*pairs),
        details.credentials,
        details.wait_for_ready,
    )


def _start(details: grpc.aio.ClientCallDetails, request: Any, identity: str) -> Exchange:
    method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
    exchange = Exchange(
        method=method,
        request=to_json(request),
        request_metadata=metadata_dict(details.metadata),
        identity=identity,
    )
    current_log().append(exchange)
    return exchange


async def _finish(exchange: Exchange, call: Any, started: float, response: Any = None) -> None:
    """Fill in the outcome of a finished call (never raises)."""
    try:
        code: grpc.StatusCode = await call.code()
        exchange.code = code.name
        exchange.details = await call.details() or ""
        exchange.initial_metadata = metadata_dict(await call.initial_metadata())
        exchange.trailing_metadata = metadata_dict(await call.trailing_metadata())
    except Exception as error:  # pragma: no cover - defensive: recording must not break a case
        exchange.details = f"(could not record the outcome: {error!r})"
    if response is not None:
        exchange.response = to_json(response)
    exchange.elapsed_s = time.perf_counter() - started


def _record_error(exchange: Exchange, error: grpc.aio.AioRpcError, started: float) -> None:
    exchange.code = error.code().name
    exchange.details = error.details() or ""
    exchange.initial_metadata = metadata_dict(error.initial_metadata())
    exchange.trailing_metadata = metadata_dict(error.trailing_metadata())
    exchange.error = parse_error(error)
    exchange.elapsed_s = time.perf_counter() - started


class _Interceptor:
    """Adds the channel's bearer token and records the call."""

    def __init__(self, token: str | None, identity: str) -> None:
        self._token = token
        self._identity = identity

    def _begin(self, details: grpc.aio.ClientCallDetails, request: Any) -> tuple[Any, Exchange]:
        details = _with_token(details, self._token)
        return details, _start(details, request, self._identity)


class _UnaryUnary(_Interceptor, _UU):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        details, exchange = self._begin(client_call_details, request)
        started = time.perf_counter()
        call = await continuation(details, request)
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            _record_error(exchange, error, started)
            return call
        except asyncio.CancelledError:
            exchange.code = "CANCELLED"
            exchange.elapsed_s = time.perf_counter() - started
            raise
        await _finish(exchange, call, started, response)
        return call


def _watch(exchange: Exchange, call: Any, started: float) -> None:
    """Record a streaming call's outcome when it ends."""

    async def wait() -> None:
        try:
            code: grpc.StatusCode = await call.code()
            if code == grpc.StatusCode.OK:
                await _finish(exchange, call, started)
                return
            trailing = await call.trailing_metadata()
            exchange.code = code.name
            exchange.details = await call.details() or ""
            exchange.trailing_metadata = metadata_dict(trailing)
            exchange.error = parse_error(_StatusView(code, exchange.details, trailing))
            exchange.elapsed_s = time.perf_counter() - started
        except asyncio.CancelledError:
            exchange.code = "CANCELLED"

    task = asyncio.ensure_future(wait())
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


_PENDING: set[asyncio.Future[None]] = set()


class _StatusView:
    """The parts of a failed call that the error parser reads, for calls that ended without raising."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailing


class _UnaryStream(_Interceptor, _US):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        details, exchange = self._begin(client_call_details, request)
        call = await continuation(details, request)
        _watch(exchange, call, time.perf_counter())
        return call


class _StreamUnary(_Interceptor, _SU):
    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        details, exchange = self._begin(client_call_details, None)
        exchange.request = {"stream": True}
        call = await continuation(details, request_iterator)
        _watch(exchange, call, time.perf_counter())
        return call


class _StreamStream(_Interceptor, _SS):
    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        details, exchange = self._begin(client_call_details, None)
        exchange.request = {"stream": True}
        call = await continuation(details, request_iterator)
        _watch(exchange, call, time.perf_counter())
        return call


def channel_interceptors(token: str | None, identity: str) -> list[Any]:
    """Interceptors for a channel that calls as ``identity`` with ``token`` (None: no token)."""
    return [
        _UnaryUnary(token, identity),
        _UnaryStream(token, identity),
        _StreamUnary(token, identity),
        _StreamStream(token, identity),
    ]


async def drain_pending(wait_s: float = 1.0) -> None:
    """Give the outcome recorders of streaming calls up to ``wait_s`` seconds to finish."""
    if _PENDING:
        await asyncio.wait(list(_PENDING), timeout=wait_s)
