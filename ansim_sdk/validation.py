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
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor
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


_THIS_FIELD = re.compile(r"\bthis\.([a-z_][a-z0-9_]*)")


def _top_level(expression: str, token: str) -> list[int]:
    """Offsets of ``token`` in ``expression`` outside brackets and string literals."""
    found: list[int] = []
    depth, quote, i = 0, "", 0
    while i < len(expression):
        c = expression[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and expression.startswith(token, i):
            found.append(i)
            i += len(token)
            continue
        i += 1
    return found


def _constraint(expression: str) -> str:
    """The part of a rule that constrains, without its guards: the branches of a top-level
    ``cond ? a : b`` and the last operand of a top-level ``guard || … || constraint`` (how an
    implication is written: ``!(this.kind in [1, 2]) || this.zone != ''`` is about ``zone``)."""
    ternary = _top_level(expression, "?")
    if ternary:
        expression = expression[ternary[0] + 1 :]
    disjuncts = _top_level(expression, "||")
    return expression[disjuncts[-1] + 2 :] if disjuncts else expression


def message_rule_field(root: Descriptor, path: str, rule_id: str) -> str:
    """For a violation of a message-level CEL rule, the path of the field it constrains: the first
    field (``this.<field>``) its expression reads once guards are left out (see :func:`_constraint`),
    so that every field violation names the offending field (ERR-003).

    ``path`` is the violation's own path (empty at the top level, or the field holding the nested
    message); returns ``path`` unchanged for field-level rules or when no field can be found.
    """
    desc: Descriptor | None = root
    for segment in filter(None, path.split(".")):
        field = desc.fields_by_name.get(segment.split("[", 1)[0]) if desc else None
        desc = field.message_type if field is not None else None
    if desc is None or not rule_id:
        return path
    rules = desc.GetOptions().Extensions[validate_pb2.message]
    for rule in rules.cel:
        if rule.id == rule_id:
            for part in (_constraint(rule.expression), rule.expression):
                found = _THIS_FIELD.search(part)
                if found and found.group(1) in desc.fields_by_name:
                    return f"{path}.{found.group(1)}" if path else found.group(1)
    return path


def requirement_of(rule_id: str) -> str:
    """The requirement id a rule id names, or ``""`` for built-in rules like ``double.gte_lte``."""
    return rule_id if REQUIREMENT_ID.match(rule_id) else ""


def to_field_violations(
    violations: list[protovalidate.Violation], root: Descriptor | None = None
) -> list[FieldViolation]:
    """Convert protovalidate violations to field violations, keeping their order. With the
    validated message's descriptor as ``root``, message-level rules name their first field."""
    result: list[FieldViolation] = []
    for v in violations:
        proto = v.proto
        rule_id = str(proto.rule_id)
        path = field_path(proto)
        if root is not None:
            path = message_rule_field(root, path, rule_id)
        result.append(
            FieldViolation(
                field=path,
                description=f"{rule_id}: {proto.message}" if rule_id else str(proto.message),
                requirement=requirement_of(rule_id),
            )
        )
    return result


def violations_of(message: Message) -> list[FieldViolation]:
    """All field violations of ``message`` (empty when it is valid)."""
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
    return to_field_violations(_validator.collect_violations(message), descriptor)


def validate(message: Message) -> None:
    """Raise :class:`InvalidArgument` (INVALID_FIELD + BadRequest) if ``message`` breaks its rules.

    Servicers call this exactly once per request, first thing, before any domain logic.
    """
    found = violations_of(message)
    if found:
        raise InvalidArgument(found)


__all__ = [
    "REQUIREMENT_ID",
    "InvalidArgument",
    "field_path",
    "message_rule_field",
    "requirement_of",
    "validate",
    "violations_of",
]
