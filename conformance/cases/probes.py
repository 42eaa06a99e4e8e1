"""A cheap, always-allowed read rpc of the declared profile, for generic tests (auth, malformed
bytes, unknown fields, headers) that need *some* rpc of the target."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from conformance.context import CaseContext


@dataclass(frozen=True)
class Probe:
    method: str
    request: Message
    response_type: type[Message]
    #: A role the authorization tables allow to call ``method``.
    role: str

    @property
    def payload(self) -> bytes:
        return self.request.SerializeToString()


def probe_for(ctx: CaseContext) -> Probe:
    """ListCameras of the fixture center (center-core), else ListCenters (directory)."""
    if ctx.has_profile("center-core"):
        from ansim.v1 import camera_pb2

        return Probe(
            "/ansim.v1.CameraService/ListCameras",
            camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=1),
            camera_pb2.ListCamerasResponse,
            "CENTER_OPERATOR",
        )
    if ctx.has_profile("directory"):
        from ansim.v1 import directory_pb2

        return Probe(
            "/ansim.v1.DirectoryService/ListCenters",
            directory_pb2.ListCentersRequest(page_size=1),
            directory_pb2.ListCentersResponse,
            "DIRECTORY_ADMIN",
        )
    ctx.skip("no generic probe rpc for the declared profiles (needs center-core or directory)")
    raise AssertionError("unreachable")
