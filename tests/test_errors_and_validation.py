"""The error model (reason table, rich statuses, parser) and request validation."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from ansim.v1 import child_safety_pb2, common_pb2, error_pb2
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from ansim_sdk import errors
from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from ansim_sdk.validation import validate, violations_of

ERROR_PROTO = Path(__file__).resolve().parents[1] / "proto" / "ansim" / "v1" / "error.proto"


def test_every_error_reason_has_exactly_one_status_code() -> None:
    reasons = {v.number: v.name for v in error_pb2.ErrorReason.DESCRIPTOR.values}
    missing = sorted(
        name for number, name in reasons.items() if number not in errors.REASON_CODES and number != 0
    )
    assert not missing, f"add these reasons to ansim_sdk.errors.REASON_CODES: {missing}"
    assert 0 not in errors.REASON_CODES  # UNSPECIFIED is never sent
    assert set(errors.REASON_CODES) <= set(reasons)


def test_the_table_agrees_with_the_codes_named_in_error_proto() -> None:
    comments = re.findall(
        r"//\s*([A-Z_]+):[^\n]*\n(?:\s*//[^\n]*\n)*\s*(ERROR_REASON_[A-Z_]+)\s*=", ERROR_PROTO.read_text()
    )
    assert len(comments) == len(errors.REASON_CODES)
    for code, name in comments:
        assert errors.REASON_CODES[error_pb2.ErrorReason.Value(name)].name == code, name


def details(status: status_pb2.Status) -> list[str]:
    return [d.TypeName() for d in status.details]


def test_status_has_one_error_info_and_the_details_its_code_requires() -> None:
    plain = AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "not yours", metadata={"k": "v"}).to_status_proto()
    assert plain.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert details(plain) == ["google.rpc.ErrorInfo"]
    info = error_details_pb2.ErrorInfo()
    plain.details[0].Unpack(info)
    assert (info.domain, info.reason, dict(info.metadata)) == ("ansim.v1", "NOT_OWNER", {"k": "v"})

    invalid = InvalidArgument(
        [FieldViolation("location.latitude", "double.gte_lte: bad", "")]
    ).to_status_proto()
    assert details(invalid) == ["google.rpc.ErrorInfo", "google.rpc.BadRequest"]

    unavailable = AnsimError(
        error_pb2.ERROR_REASON_PEER_UNAVAILABLE, "peer down", retry_delay=timedelta(seconds=5)
    ).to_status_proto()
    assert details(unavailable) == ["google.rpc.ErrorInfo", "google.rpc.RetryInfo"]
    parsed = errors.parse_status_proto(grpc.StatusCode.UNAVAILABLE, unavailable)
    assert parsed.retry_delay == timedelta(seconds=5) and parsed.reason == "PEER_UNAVAILABLE"


def test_unspecified_reason_cannot_be_raised() -> None:
    with pytest.raises(ValueError):
        AnsimError(error_pb2.ERROR_REASON_UNSPECIFIED, "x")


def location(**fields: object) -> common_pb2.Location:
    loc = common_pb2.Location(fix_time=timestamp_pb2.Timestamp(seconds=1_700_000_000))
    for name, value in fields.items():
        setattr(loc, name, value)
    return loc


def test_valid_request_passes() -> None:
    validate(location(latitude=37.57, longitude=126.98))


def test_violations_have_dotted_paths_with_indexes_rule_ids_and_requirements() -> None:
    loc = location(latitude=91.0)
    loc.polygon.vertices.add(latitude=10, longitude=200)
    found = {v.field: v for v in violations_of(loc)}
    assert set(found) == {"latitude", "polygon.vertices", "polygon.vertices[0].longitude"}
    assert found["latitude"].description.startswith("double.gte_lte: ")
    assert found["latitude"].requirement == ""

    loc = location()
    loc.ellipse.semi_major_m, loc.ellipse.semi_minor_m = 10, 20
    (violation,) = violations_of(loc)
    assert (violation.field, violation.requirement) == ("ellipse.semi_minor_m", "LOC-005")
    assert violation.description.startswith("LOC-005: ")


def test_a_message_level_rule_names_the_field_it_constrains_not_its_guard() -> None:
    # CHD-007 "!(this.kind in [1, 2, 3]) || this.zone != ''" is about zone (the spec names reader.zone);
    # CHD-005 "(this.kind == 3) ? … this.uid … : … this.uid …" is about uid.
    reader = child_safety_pb2.Reader(kind=child_safety_pb2.READER_KIND_SCHOOL_GATE)
    assert [v.field for v in violations_of(reader) if v.requirement == "CHD-007"] == ["zone"]
    tag = child_safety_pb2.Tag(kind=child_safety_pb2.TAG_KIND_USIM_DEVICE, uid="123")
    assert [v.field for v in violations_of(tag) if v.requirement == "CHD-005"] == ["uid"]


def test_validate_raises_invalid_argument_with_all_violations() -> None:
    with pytest.raises(InvalidArgument) as failure:
        validate(common_pb2.Location(latitude=100))
    assert failure.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in failure.value.field_violations} == {"latitude", "fix_time"}
