"""The Ansim error model in code: reason → status code table, rich statuses, and their parser.

Every error on the wire is a ``google.rpc.Status`` carrying exactly one ``google.rpc.ErrorInfo``
(``domain`` ``"ansim.v1"``, ``reason`` = the ``ErrorReason`` value name without ``ERROR_REASON_``)
[ERR-001], plus a ``google.rpc.BadRequest`` for INVALID_FIELD [ERR-003] and a ``google.rpc.RetryInfo``
for UNAVAILABLE and RESOURCE_EXHAUSTED [ERR-004]. The server raises :class:`AnsimError` (or a
subclass) and the error interceptor turns it into that status; the conformance suite reads statuses
back with :func:`parse_rpc_error`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

import grpc
import grpc.aio
from ansim.v1 import error_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "ansim.v1"
REASON_PREFIX = "ERROR_REASON_"
#: Retry delay sent when an UNAVAILABLE / RESOURCE_EXHAUSTED error does not name one.
DEFAULT_RETRY_DELAY = timedelta(seconds=1)

ErrorReason = error_pb2.ErrorReason

_C = grpc.StatusCode
#: The one table of reason → gRPC status code [ERR-002]. ERROR_REASON_UNSPECIFIED is never sent and
#: has no row. A test checks that every other ErrorReason value has a row and that the row agrees
#: with the code named in error.proto's comment.
REASON_CODES: dict[int, grpc.StatusCode] = {
    error_pb2.ERROR_REASON_INVALID_FIELD: _C.INVALID_ARGUMENT,
    error_pb2.ERROR_REASON_MALFORMED_MESSAGE: _C.INVALID_ARGUMENT,
    error_pb2.ERROR_REASON_PAGE_TOKEN_INVALID: _C.INVALID_ARGUMENT,
    error_pb2.ERROR_REASON_CURSOR_INVALID: _C.INVALID_ARGUMENT,
    error_pb2.ERROR_REASON_CURSOR_EXPIRED: _C.OUT_OF_RANGE,
    error_pb2.ERROR_REASON_TOKEN_MISSING: _C.UNAUTHENTICATED,
    error_pb2.ERROR_REASON_TOKEN_INVALID: _C.UNAUTHENTICATED,
    error_pb2.ERROR_REASON_TOKEN_EXPIRED: _C.UNAUTHENTICATED,
    error_pb2.ERROR_REASON_ROLE_NOT_PERMITTED: _C.PERMISSION_DENIED,
    error_pb2.ERROR_REASON_NOT_OWNER: _C.PERMISSION_DENIED,
    error_pb2.ERROR_REASON_PEER_NOT_TRUSTED: _C.PERMISSION_DENIED,
    error_pb2.ERROR_REASON_LIVE_MODE_REFUSED: _C.PERMISSION_DENIED,
    error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND: _C.NOT_FOUND,
    error_pb2.ERROR_REASON_ALREADY_EXISTS: _C.ALREADY_EXISTS,
    error_pb2.ERROR_REASON_REQUEST_ID_REUSED: _C.ALREADY_EXISTS,
    error_pb2.ERROR_REASON_EMERGENCY_NOT_ACTIVE: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_INVALID_STATE_TRANSITION: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_DISPATCH_NOT_ACKNOWLEDGED: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_VIDEO_ACCESS_DENIED: _C.PERMISSION_DENIED,
    error_pb2.ERROR_REASON_CAMERA_NOT_NEAR_EMERGENCY: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_GRANT_NOT_ACTIVE: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_TRIP_NOT_ACTIVE: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_MODE_MISMATCH: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_ACK_TOO_LATE: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_RESOURCE_IN_USE: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_ETAG_MISMATCH: _C.ABORTED,
    error_pb2.ERROR_REASON_OUTSIDE_SERVICE_AREA: _C.NOT_FOUND,
    error_pb2.ERROR_REASON_FORWARDING_LOOP: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_NOT_RESPONSIBLE: _C.FAILED_PRECONDITION,
    error_pb2.ERROR_REASON_PEER_UNAVAILABLE: _C.UNAVAILABLE,
    error_pb2.ERROR_REASON_RATE_LIMITED: _C.RESOURCE_EXHAUSTED,
    error_pb2.ERROR_REASON_SERVER_UNAVAILABLE: _C.UNAVAILABLE,
    error_pb2.ERROR_REASON_INTERNAL: _C.INTERNAL,
}
#: Codes whose statuses carry a google.rpc.RetryInfo.
RETRY_CODES = frozenset({_C.UNAVAILABLE, _C.RESOURCE_EXHAUSTED})


def reason_name(reason: int) -> str:
    """``ErrorInfo.reason`` for an ErrorReason value, e.g. ``"TOKEN_MISSING"``."""
    return ErrorReason.Name(reason).removeprefix(REASON_PREFIX)  # type: ignore[arg-type]


def reason_from_name(name: str) -> int | None:
    """The ErrorReason value for an ``ErrorInfo.reason`` string; None if this version does not know it."""
    try:
        return int(ErrorReason.Value(REASON_PREFIX + name))
    except ValueError:
        return None


def status_code_for(reason: int) -> grpc.StatusCode:
    """The one status code that goes with ``reason`` [ERR-002]; KeyError for UNSPECIFIED."""
    return REASON_CODES[reason]


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: dotted proto path with ``[index]``, what is wrong, and the requirement id."""

    field: str
    description: str
    requirement: str = ""


class AnsimError(Exception):
    """A domain error that the server sends as a rich status. Raise it (or a subclass) anywhere in a
    servicer or below; the error interceptor converts it.
    """

    def __init__(
        self,
        reason: int,
        message: str,
        *,
        field_violations: Iterable[FieldViolation] = (),
        retry_delay: timedelta | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if reason not in REASON_CODES:
            raise ValueError(f"{reason!r} is not a sendable ErrorReason")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field_violations = tuple(field_violations)
        self.retry_delay = retry_delay
        self.metadata = dict(metadata or {})

    @property
    def code(self) -> grpc.StatusCode:
        return REASON_CODES[self.reason]

    def to_status_proto(self) -> status_pb2.Status:
        return build_status_proto(
            self.reason,
            self.message,
            field_violations=self.field_violations,
            retry_delay=self.retry_delay,
            metadata=self.metadata,
        )

    def to_grpc_status(self) -> grpc.Status:
        return rpc_status.to_status(self.to_status_proto())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({reason_name(self.reason)}, {self.message!r})"


class InvalidArgument(AnsimError):
    """INVALID_ARGUMENT / INVALID_FIELD with one field violation per invalid field [ERR-003]."""

    def __init__(self, violations: Iterable[FieldViolation], message: str | None = None) -> None:
        violations = tuple(violations)
        if not violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        if message is None:
            fields = ", ".join(v.field or "(message)" for v in violations)
            message = f"invalid field(s): {fields}"
        super().__init__(error_pb2.ERROR_REASON_INVALID_FIELD, message, field_violations=violations)


def build_status_proto(
    reason: int,
    message: str,
    *,
    field_violations: Iterable[FieldViolation] = (),
    retry_delay: timedelta | None = None,
    metadata: Mapping[str, str] | None = None,
) -> status_pb2.Status:
    """A google.rpc.Status with exactly one ErrorInfo, plus BadRequest / RetryInfo where required."""
    code = REASON_CODES[reason]
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(
        domain=DOMAIN, reason=reason_name(reason), metadata=dict(metadata or {})
    )
    status.details.add().Pack(info)
    violations = list(field_violations)
    if violations or reason == error_pb2.ERROR_REASON_INVALID_FIELD:
        bad = error_details_pb2.BadRequest()
        for v in violations:
            bad.field_violations.add(field=v.field, description=v.description, reason=v.requirement)
        status.details.add().Pack(bad)
    if code in RETRY_CODES:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(retry_delay if retry_delay is not None else DEFAULT_RETRY_DELAY)
        status.details.add().Pack(retry)
    return status


def to_grpc_status(error: AnsimError) -> grpc.Status:
    """The grpc.Status (code, details, ``grpc-status-details-bin`` trailer) for ``error``."""
    return error.to_grpc_status()


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: AnsimError) -> NoReturn:
    """End the current grpc.aio call with ``error`` as a rich status."""
    st = error.to_grpc_status()
    await context.abort(st.code, st.details, st.trailing_metadata)


def abort_sync(context: grpc.ServicerContext, error: AnsimError) -> NoReturn:
    """End the current synchronous-server call with ``error`` as a rich status."""
    context.abort_with_status(error.to_grpc_status())
    raise AssertionError("abort_with_status returned")  # pragma: no cover


@dataclass(frozen=True)
class ParsedError:
    """What a client learns from a failed call."""

    code: grpc.StatusCode
    message: str
    #: ``ErrorInfo.reason`` (e.g. ``"TOKEN_MISSING"``); empty if the status had no ErrorInfo.
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()
    retry_delay: timedelta | None = None
    #: How many ErrorInfo details the status carried (the contract says exactly one [ERR-001]).
    error_info_count: int = 0
    #: False when the call had no ``grpc-status-details-bin`` trailer at all.
    has_rich_status: bool = False

    @property
    def reason_value(self) -> int | None:
        """The ErrorReason value of :attr:`reason`; None when unknown to this version [ERR-006]."""
        return reason_from_name(self.reason) if self.reason else None


def parse_status_proto(code: grpc.StatusCode, status: status_pb2.Status) -> ParsedError:
    """Unpack the ErrorInfo, BadRequest and RetryInfo details of a google.rpc.Status."""
    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry: timedelta | None = None
    infos = 0
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos += 1
            if infos == 1:
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_r = error_details_pb2.RetryInfo()
            detail.Unpack(info_r)
            retry = info_r.retry_delay.ToTimedelta()
    return ParsedError(
        code=code,
        message=status.message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=tuple(violations),
        retry_delay=retry,
        error_info_count=infos,
        has_rich_status=True,
    )


def parse_rpc_error(error: grpc.RpcError | grpc.aio.AioRpcError) -> ParsedError:
    """Extract (code, reason, field violations, metadata, retry delay) from a failed call.

    Works for synchronous ``grpc.RpcError`` (which is also a ``grpc.Call``) and for
    ``grpc.aio.AioRpcError``. Raises ValueError when the rich status contradicts the call's own code
    or message (a contract violation the conformance suite reports).
    """
    call: Any = error  # both kinds are also calls: code(), details(), trailing_metadata()
    code: grpc.StatusCode = call.code()
    details: str = call.details() or ""
    status = rpc_status.from_call(call)
    if status is None:
        return ParsedError(code=code, message=details)
    return parse_status_proto(code, status)


def code_of(status: status_pb2.Status) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Status."""
    for c in grpc.StatusCode:
        if c.value[0] == status.code:
            return c
    return grpc.StatusCode.UNKNOWN


__all__ = [
    "DEFAULT_RETRY_DELAY",
    "DOMAIN",
    "REASON_CODES",
    "AnsimError",
    "ErrorReason",
    "FieldViolation",
    "InvalidArgument",
    "ParsedError",
    "abort",
    "abort_sync",
    "build_status_proto",
    "code_of",
    "parse_rpc_error",
    "parse_status_proto",
    "reason_from_name",
    "reason_name",
    "status_code_for",
    "to_grpc_status",
]
