"""Mutant: emits wrong JSON names.

Defect: the descriptors the center serves by reflection give ``ansim.v1.Location.radius_m`` the
JSON name ``radius_m`` (the proto name) instead of ``radiusM``, as a server that writes JSON with
preserved field names would describe itself [GEN-005 broken]. Nothing else changes.

Expected to fail: TC_GEN_003_SRV (descriptors served by reflection match the standard field by
field, JSON names included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import _base

CAUGHT_BY = ("TC_GEN_003_SRV",)

MESSAGE, FIELD, WRONG = "Location", "radius_m", "radius_m"

_original = _base._file_descriptor_response


def _rename(serialized: bytes) -> bytes:
    proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    if proto.package != "ansim.v1":
        return serialized
    for message in proto.message_type:
        if message.name == MESSAGE:
            for field in message.field:
                if field.name == FIELD:
                    field.json_name = WRONG
    return proto.SerializeToString()


def _with_wrong_json_name(descriptor: Any, original_request: Any) -> Any:
    response = _original(descriptor, original_request)
    files = response.file_descriptor_response.file_descriptor_proto
    files[:] = [_rename(f) for f in files]
    return response


def install(ctx: Any, server: Any) -> Sequence[str]:
    _base._file_descriptor_response = _with_wrong_json_name
    return []
