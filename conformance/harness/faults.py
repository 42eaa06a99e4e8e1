"""Errors the harness sends on purpose, as rich statuses (google.rpc.Status with ErrorInfo and,
for UNAVAILABLE, RetryInfo), including ones a correct client must see through: a misleading message
text [ERR-005] and an ErrorInfo reason no version of the standard defines [ERR-006]."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ansim_sdk.errors import DOMAIN

#: A reason the standard does not define: a client must treat it as the generic error of its code.
UNKNOWN_REASON = "HARNESS_REASON_FROM_A_NEWER_VERSION"
#: Text that says the opposite of the code: a client must decide from code and reason only.
MISLEADING_TEXT = "permanent failure: the request is invalid, do not retry"


@dataclass(frozen=True)
class Fault(Exception):
    """End the current call with this status (the harness's servicers raise it)."""

    code: grpc.StatusCode
    reason: str
    message: str
    retry_delay_s: float | None = None
    note: str = ""

    def status(self) -> grpc.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        status.details.add().Pack(error_details_pb2.ErrorInfo(domain=DOMAIN, reason=self.reason))
        if self.retry_delay_s is not None:
            retry = error_details_pb2.RetryInfo()
            retry.retry_delay.FromTimedelta(timedelta(seconds=self.retry_delay_s))
            status.details.add().Pack(retry)
        return rpc_status.to_status(status)

    def describe(self) -> str:
        delay = f", RetryInfo {self.retry_delay_s:g} s" if self.retry_delay_s is not None else ""
        return f"{self.note or 'injected'}: {self.code.name}/{self.reason}{delay}"


def unavailable(
    note: str, *, retry_delay_s: float = 0.3, unknown_reason: bool = False, misleading: bool = False
) -> Fault:
    return Fault(
        grpc.StatusCode.UNAVAILABLE,
        UNKNOWN_REASON if unknown_reason else "SERVER_UNAVAILABLE",
        MISLEADING_TEXT if misleading else "the center is briefly unavailable (harness)",
        retry_delay_s,
        note,
    )


def not_active(note: str) -> Fault:
    return Fault(
        grpc.StatusCode.FAILED_PRECONDITION, "EMERGENCY_NOT_ACTIVE", "the emergency is not active", None, note
    )


def cursor_expired(note: str) -> Fault:
    return Fault(
        grpc.StatusCode.OUT_OF_RANGE,
        "CURSOR_EXPIRED",
        "the cursor is older than the retained history",
        None,
        note,
    )


def ack_error(code: grpc.StatusCode, reason: str, message: str) -> status_pb2.Status:
    """A google.rpc.Status for a per-item ack (TagEventAck.error)."""
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(domain=DOMAIN, reason=reason))
    return status
