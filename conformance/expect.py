"""Assertions for test cases. Each raises :class:`ConformanceFailure` with the wire exchange that
shows the problem; the runner turns it into verdict FAIL."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
import grpc.aio

from ansim_sdk.errors import DOMAIN, REASON_CODES, reason_from_name
from conformance.outcomes import ConformanceFailure
from conformance.recorder import Exchange, current_log
from conformance.wire import ParsedError, parse_error

T = TypeVar("T")


def _exchange_since(start: int) -> Exchange | None:
    log = current_log()
    return log[-1] if len(log) > start else (log[-1] if log else None)


def fail(message: str, exchange: Exchange | None = None) -> None:
    """Raise ConformanceFailure (with the case's last exchange when none is given)."""
    if exchange is None:
        log = current_log()
        exchange = log[-1] if log else None
    raise ConformanceFailure(message, exchange)


def check(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        fail(message)


def _describe(error: ParsedError) -> str:
    reason = f", reason {error.reason}" if error.reason else ", no ErrorInfo"
    return f"{error.code.name}{reason}: {error.message!r}"


async def expect_ok(call: Awaitable[T], what: str = "the call") -> T:
    """Await ``call`` and return its response; fail when it ends with an error status."""
    start = len(current_log())
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        parsed = parse_error(error)
        raise ConformanceFailure(
            f"expected {what} to succeed, got {_describe(parsed)}", _exchange_since(start)
        ) from None


def error_problems(error: ParsedError) -> list[str]:
    """Why a status breaks the error model (ERR-001 one ErrorInfo with domain ansim.v1 and a known
    reason, ERR-002 the reason's code, ERR-003 field violations for INVALID_FIELD); [] if it is right."""
    if error.inconsistent:
        return [error.inconsistent]
    if not error.has_rich_status:
        return ["the status has no google.rpc.Status details (grpc-status-details-bin) [ERR-001]"]
    problems: list[str] = []
    if error.error_info_count != 1:
        problems.append(
            f"the status carries {error.error_info_count} ErrorInfo details, not exactly one [ERR-001]"
        )
    if error.domain != DOMAIN:
        problems.append(f"ErrorInfo.domain is {error.domain!r}, not {DOMAIN!r} [ERR-001]")
    value = reason_from_name(error.reason) if error.reason else None
    if value is None or value not in REASON_CODES:
        problems.append(f"ErrorInfo.reason {error.reason!r} is not an ErrorReason name [ERR-001]")
    elif REASON_CODES[value] != error.code:
        problems.append(
            f"reason {error.reason} goes with {REASON_CODES[value].name}, "
            f"but the code is {error.code.name} [ERR-002]"
        )
    if error.reason == "INVALID_FIELD" and not any(v.field for v in error.field_violations):
        problems.append("INVALID_FIELD without a BadRequest field violation naming a field [ERR-003]")
    return problems


async def expect_error(
    call: Awaitable[Any],
    *,
    code: grpc.StatusCode,
    reason: str | None = None,
    field: str | None = None,
    details_required: bool = True,
    what: str = "the call",
) -> ParsedError:
    """Await ``call``, which must fail with ``code``; returns the parsed error.

    ``reason``: the ErrorInfo reason it must carry (``"TOKEN_MISSING"``). ``field``: a BadRequest
    field violation must name this dotted path. The status must follow the error model (ERR-001,
    ERR-002, ERR-003); with ``details_required=False`` a status without any details is accepted (for
    errors raised before the server can attach them, e.g. ERR-007), but details that are there must
    still be right.
    """
    start = len(current_log())
    try:
        response = await call
    except grpc.aio.AioRpcError as raised:
        error = parse_error(raised)
    else:
        shown = str(response)[:200] if response is not None else "a response"
        raise ConformanceFailure(
            f"expected {what} to fail with {code.name}{f'/{reason}' if reason else ''}, "
            f"but it succeeded: {shown}",
            _exchange_since(start),
        )
    exchange = _exchange_since(start)
    wanted = f"{code.name}{f', reason {reason}' if reason else ''}"
    if error.code != code:
        raise ConformanceFailure(f"expected {what} to fail with {wanted}, got {_describe(error)}", exchange)
    if not details_required and not error.has_rich_status and not error.inconsistent:
        return error
    problems = error_problems(error)
    if reason is not None and error.reason and error.reason != reason:
        problems.insert(0, f"expected reason {reason}, got {error.reason}")
    if field is not None and not any(v.field == field for v in error.field_violations):
        named = ", ".join(v.field for v in error.field_violations) or "none"
        problems.append(f"expected a field violation on {field!r}; violations name: {named}")
    if problems:
        raise ConformanceFailure(
            f"{what} failed with {_describe(error)}, but " + "; ".join(problems), exchange
        )
    return error
