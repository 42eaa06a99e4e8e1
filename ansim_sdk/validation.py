"""Validate a request against its ``buf.validate`` rules once and report violations the Ansim way.

Each protovalidate violation becomes one :class:`~ansim_sdk.errors.FieldViolation`: the field path
in proto field names, dotted, with ``[index]`` for repeated elements and ``[key]`` for map entries
(e.g. ``location.polygon.vertices[0].latitude``); the description is ``"<rule id>: <message>"``;
and when the rule id names a requirement (``LOC-005``, i.e. ``[A-Z]{2,4}-\\d{3}``) it is also the
violation's requirement (``BadRequest.FieldViolation.reason``).
"""

from __future__ import annotations

import re
from typing import Any

import protovalidate
from google.protobuf.message import Message

from ansim_sdk.errors import FieldViolation, InvalidArgument

REQUIREMENT_ID = re.compile(r"^[A-Z]{2,4}-\d{3}$")

_validator = protovalidate.Validator()


def field_path(violation: Any) -> str:
    """Dotted proto-name path of a protovalidate violation (its ``proto`` form), ``[i]`` for indexes."""
    parts: list[str] = []
    if violation.field is None:  # a message-level (CEL) rule names no field
        return ""
    for element in violation.field.elements:
        segment = str(element.field_name)
        subscript = element.subscript
        if subscript is not None:
            value = subscript.value
            segment += f'["{value}"]' if isinstance(value, str) else f"[{str(value).lower()}]"
        parts.append(segment)
    return ".".join(parts)


def requirement_of(rule_id: str) -> str:
    """The requirement id a rule id names, or ``""`` for built-in rules like ``double.gte_lte``."""
    return rule_id if REQUIREMENT_ID.match(rule_id) else ""


def to_field_violations(violations: list[protovalidate.Violation]) -> list[FieldViolation]:
    """Convert protovalidate violations to field violations, keeping their order."""
    result: list[FieldViolation] = []
    for v in violations:
        proto = v.proto
        rule_id = str(proto.rule_id)
        result.append(
            FieldViolation(
                field=field_path(proto),
                description=f"{rule_id}: {proto.message}" if rule_id else str(proto.message),
                requirement=requirement_of(rule_id),
            )
        )
    return result


def violations_of(message: Message) -> list[FieldViolation]:
    """All field violations of ``message`` (empty when it is valid)."""
    return to_field_violations(_validator.collect_violations(message))


def validate(message: Message) -> None:
    """Raise :class:`InvalidArgument` (INVALID_FIELD + BadRequest) if ``message`` breaks its rules.

    Servicers call this exactly once per request, first thing, before any domain logic.
    """
    found = violations_of(message)
    if found:
        raise InvalidArgument(found)


__all__ = ["REQUIREMENT_ID", "InvalidArgument", "field_path", "requirement_of", "validate", "violations_of"]
