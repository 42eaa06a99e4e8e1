"""Thin adapter between the suite and the wire: error parsing and raw-bytes calls.

Error statuses are parsed by the SDK's own parser (:func:`ansim_sdk.errors.parse_rpc_error`), so the
suite reads errors exactly as the standard's clients do; this module only turns a status that
contradicts itself into a :class:`ParsedError` with ``inconsistent`` set instead of an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import grpc
import grpc.aio

from ansim_sdk.errors import ParsedError as SdkParsedError
from ansim_sdk.errors import parse_rpc_error

__all__ = [
    "MALFORMED_PAYLOADS",
    "ParsedError",
    "append_unknown_fields",
    "parse_error",
    "raw_unary",
]


@dataclass(frozen=True)
class ParsedError(SdkParsedError):
    """The SDK's parsed error, plus why the rich status could not be read (empty when it could)."""

    inconsistent: str = ""


def parse_error(error: Any) -> ParsedError:
    """Code, ErrorInfo, field violations and retry delay of a failed call (never raises)."""
    try:
        parsed = parse_rpc_error(error)
    except ValueError as problem:  # the grpc-status-details-bin trailer contradicts the status
        return ParsedError(
            code=error.code(),
            message=error.details() or "",
            inconsistent=f"grpc-status-details-bin contradicts the call's status: {problem}",
        )
    except Exception as problem:  # undecodable details: report, do not crash the case
        return ParsedError(
            code=error.code(),
            message=error.details() or "",
            inconsistent=f"grpc-status-details-bin could not be decoded: {problem!r}",
        )
    return ParsedError(**{f: getattr(parsed, f) for f in SdkParsedError.__dataclass_fields__})


def raw_unary(
    channel: grpc.aio.Channel, method: str, payload: bytes, *, timeout: float | None = None
) -> grpc.aio.UnaryUnaryCall[bytes, bytes]:
    """Call ``method`` (``/ansim.v1.X/Y``) with ``payload`` as the request bytes, unserialized and
    unvalidated; the response comes back as bytes. For negative tests (ERR-007, GEN-004)."""
    multicallable = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    return multicallable(payload, timeout=timeout)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def append_unknown_fields(payload: bytes, first_field: int = 9_000) -> bytes:
    """``payload`` followed by fields the standard does not define: a varint, a length-delimited,
    a fixed64 and a fixed32 field, numbered from ``first_field`` (proto3 forward compatibility,
    GEN-004)."""
    n = first_field
    extra = _varint(n << 3 | 0) + _varint(150)
    extra += _varint((n + 1) << 3 | 2) + _varint(11) + b"newer peer!"
    extra += _varint((n + 2) << 3 | 1) + (42).to_bytes(8, "little")
    extra += _varint((n + 3) << 3 | 5) + (7).to_bytes(4, "little")
    return payload + extra


#: Request bytes that do not parse as any message (ERR-007), with what is wrong with each.
MALFORMED_PAYLOADS: dict[str, bytes] = {
    "length-delimited field 1 claims 2^31 bytes but 0 follow": b"\x0a\xff\xff\xff\xff\x07",
    "varint that never ends": b"\x08" + b"\xff" * 11,
    "wire type 7 (does not exist)": b"\x0f\x00",
    "field number 0": b"\x00\x01",
}


def with_reason(error: ParsedError, reason: str) -> ParsedError:
    """A copy of ``error`` with another reason (for building expected values in tests)."""
    return replace(error, reason=reason)
