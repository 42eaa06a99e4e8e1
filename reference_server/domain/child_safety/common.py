"""Small helpers shared by the child-safety modules: names, times, protobuf blobs, queries."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol, TypeVar

from ansim.v1 import error_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from reference_server.store.interface import Params, Row

#: Korea Standard Time: schedules, closed dates and the daily reset are local to it (§14.2).
KST = timezone(timedelta(hours=9), "Asia/Seoul")
#: The recipient id that holds the operators' copies (§15.2).
OPERATORS = "operators"

M = TypeVar("M", bound=Message)


class Queryable(Protocol):
    """A transaction or the store: whatever can read rows."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


def last_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def center_of(name: str) -> str:
    """``centers/{c}`` of a resource name (empty when the name is not under a center)."""
    parts = name.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 and parts[0] == "centers" else ""


def guardian_subject(recipient: str) -> str:
    """``guardians/{g}`` for ``centers/{c}/guardians/{g}``."""
    return "guardians/" + last_id(recipient)


def to_ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def from_ts(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def content_hash(message: Message) -> bytes:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).digest()


def parse(cls: type[M], blob: bytes | memoryview) -> M:
    return cls.FromString(bytes(blob))


def invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description)])


def not_found(what: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{what} does not exist")


def not_owner(message: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, message)


#: Message-level (CEL) rules of the child-safety messages → the field they are about, so that each
#: violation names a field [ERR-003] (e.g. ``ward`` + CHD-002 → ``ward.display_name``).
_CEL_FIELDS = {
    "CHD-002": "display_name",
    "CHD-005": "uid",
    "CHD-007": "zone",
    "GRD-017": "end_time",
}


def _refined_field(v: FieldViolation) -> str:
    path = v.field
    leaf = path.rsplit(".", 1)[-1]
    if v.requirement == "CHD-004":
        extra = "guardians" if leaf.startswith("ward") else "school_contacts"
    elif v.requirement == "CHD-008":
        extra = "end_local_time" if "active_windows[" in leaf else "kind"
    elif v.requirement == "CHD-009":
        extra = "update_mask"
        path = ""
    else:
        extra = _CEL_FIELDS.get(v.requirement, "")
    if leaf == extra:  # ansim_sdk.validation already named it
        return path
    if not extra or (path and not (leaf.startswith(("ward", "tag", "reader", "zone")) or "[" in leaf)):
        return path
    return f"{path}.{extra}" if path else extra


def refine(violations: list[FieldViolation]) -> list[FieldViolation]:
    """Name a field for every violation of a message-level rule [ERR-003]."""
    return [FieldViolation(_refined_field(v), v.description, v.requirement) for v in violations]


def check_request(message: Message) -> None:
    """Validate ``message`` once (as ``ansim_sdk.validation.validate``) with refined field paths."""
    from ansim_sdk.validation import violations_of

    found = refine(violations_of(message))
    if found:
        raise InvalidArgument(found)
