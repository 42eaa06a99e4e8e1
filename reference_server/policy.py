"""THE authorization table: which roles may call which method.

One row per full method name (``/ansim.v1.EmergencyService/RaiseEmergency``). A row names the roles
allowed to call the method and, in ``note``, the resource-level conditions that the domain code
enforces on top (ownership, agency, mode, state); those fail with NOT_OWNER and friends, not here.
Methods without a row are denied (default deny) with PERMISSION_DENIED / ROLE_NOT_PERMITTED, and a
test fails listing every rpc of the generated descriptors that has no row.

To add a service: add a block of rows below, one per rpc, keeping services in file order. A method
that needs no token at all (health, reflection, published keys) uses ``public(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ansim.v1 import common_pb2 as c


@dataclass(frozen=True)
class Rule:
    """Who may call one method."""

    #: Role values (``common_pb2.ROLE_*``) that may call the method. Empty for public methods.
    roles: frozenset[int]
    #: Resource-level conditions enforced by the domain code (documentation, shown in reviews).
    note: str = ""
    #: True for methods callable without a token.
    public: bool = False


def allow(*roles: int, note: str = "") -> Rule:
    return Rule(frozenset(roles), note)


def public(note: str = "") -> Rule:
    return Rule(frozenset(), note, public=True)


OPERATOR = c.ROLE_CENTER_OPERATOR
POLICE = c.ROLE_POLICE_OFFICER
FIRE = c.ROLE_FIRE_OFFICER
AUDITOR = c.ROLE_AUDITOR
PEER = c.ROLE_PEER_CENTER
DIRECTORY_ADMIN = c.ROLE_DIRECTORY_ADMIN
OFFICERS = (POLICE, FIRE)
#: Every role a token can carry.
ANY_ROLE = tuple(v for v in c.Role.values() if v != c.ROLE_UNSPECIFIED)

_CAMERA = "/ansim.v1.CameraService/"
_DIRECTORY = "/ansim.v1.DirectoryService/"

TABLE: Mapping[str, Rule] = {
    # --- infrastructure (no token) ---------------------------------------------------------------
    "/grpc.health.v1.Health/Check": public("load balancers and peers probe health without a token"),
    "/grpc.health.v1.Health/Watch": public("load balancers and peers probe health without a token"),
    "/grpc.health.v1.Health/List": public("load balancers and peers probe health without a token"),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": public("schema only, no data"),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": public("schema only, no data"),
    # --- CameraService (camera.proto) -------------------------------------------------------------
    _CAMERA + "GetCamera": allow(OPERATOR, *OFFICERS, PEER, AUDITOR),
    _CAMERA + "ListCameras": allow(OPERATOR, *OFFICERS, PEER, AUDITOR),
    _CAMERA + "SearchNearbyCameras": allow(
        OPERATOR, *OFFICERS, PEER, note="officers: only around emergencies dispatched to their agency"
    ),
    _CAMERA + "CreateVideoGrant": allow(
        *OFFICERS,
        note="agency acknowledged a dispatch for the emergency (DISPATCH_NOT_ACKNOWLEDGED), agency kind was "
        "dispatched (VIDEO_ACCESS_DENIED), cameras near it (CAMERA_NOT_NEAR_EMERGENCY), mode matches",
    ),
    _CAMERA + "GetVideoGrant": allow(
        OPERATOR,
        *OFFICERS,
        AUDITOR,
        note="officers: own grants only; stream tokens only to the grant's officer",
    ),
    _CAMERA + "RevokeVideoGrant": allow(
        OPERATOR, *OFFICERS, note="officers: grants of their own agency only"
    ),
    _CAMERA + "ListAccessRecords": allow(OPERATOR, AUDITOR),
    _CAMERA + "GetVideoGatewayKeys": public("public keys for offline token checks [VID-024]"),
    # --- DirectoryService (directory.proto) -------------------------------------------------------
    _DIRECTORY + "CreateCenter": allow(DIRECTORY_ADMIN),
    _DIRECTORY + "GetCenter": allow(DIRECTORY_ADMIN, PEER, OPERATOR),
    _DIRECTORY + "ListCenters": allow(DIRECTORY_ADMIN, PEER, OPERATOR),
    _DIRECTORY + "UpdateCenter": allow(
        DIRECTORY_ADMIN, PEER, note="a peer center may update only its own entry and not its state"
    ),
    _DIRECTORY + "ResolveCenter": allow(*ANY_ROLE),
    _DIRECTORY + "GetDirectoryKeys": allow(*ANY_ROLE),
}


def rule_for(method: str) -> Rule | None:
    return TABLE.get(method)


def is_public(method: str) -> bool:
    rule = TABLE.get(method)
    return rule is not None and rule.public


def is_allowed(method: str, role: int) -> bool:
    """True if ``role`` may call ``method``; False for unknown methods (default deny)."""
    rule = TABLE.get(method)
    return rule is not None and (rule.public or role in rule.roles)
