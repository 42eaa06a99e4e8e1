"""validate() for directory and federation requests, naming a field for message-level CEL rules.

protovalidate reports a message-level rule (e.g. DIR-002 on CreateCenterRequest) without a field
path, but an INVALID_FIELD error must name a field (ERR-003); these rules name the field they are
about.
"""

from __future__ import annotations

from google.protobuf.message import Message

from ansim_sdk.errors import FieldViolation, InvalidArgument
from ansim_sdk.validation import validate

RULE_FIELDS = {
    "DIR-002": "center",
    "DIR-005": "update_mask",
    "DIR-013": "expire_time",
    "FED-004": "via",
    "FED-018": "reason",
    "FED-021": "transferred_to",
    "FED-023": "events",
}


def validate_request(request: Message) -> None:
    try:
        validate(request)
    except InvalidArgument as error:
        named = [
            v if v.field else FieldViolation(RULE_FIELDS.get(v.requirement, ""), v.description, v.requirement)
            for v in error.field_violations
        ]
        raise InvalidArgument(named) from None
