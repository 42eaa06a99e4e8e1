"""THE authorization table: which roles may call which method.

One row per full method name (``/ansim.v1.EmergencyService/RaiseEmergency``). A row names the roles
allowed to call the method and, in ``note``, the resource-level conditions that the domain code
enforces on top (ownership, agency, mode, state); those fail with NOT_OWNER and friends, not here.
Methods without a row are denied (default deny) with PERMISSION_DENIED / ROLE_NOT_PERMITTED, and a
test fails listing every rpc of the generated descriptors that has no row.

To add a service: add a ``**rows("<Service>", {...})`` block to ``TABLE``, one entry per rpc, copied
from the service's authorization table in spec/ (a test compares the two). A method that needs no
token at all (health, reflection, the public keys of GetVideoGatewayKeys) uses ``public(...)``.
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


def rows(service: str, rules: Mapping[str, Rule]) -> dict[str, Rule]:
    """Rows of one service, keyed by full method name (``/ansim.v1.<service>/<rpc>``)."""
    return {f"/ansim.v1.{service}/{rpc}": rule for rpc, rule in rules.items()}


_OWN_AGENCY = "officers: own agency's dispatches only"

#: Infrastructure methods needing no token.
INFRASTRUCTURE: dict[str, Rule] = {
    "/grpc.health.v1.Health/Check": public("load balancers and peers probe health without a token"),
    "/grpc.health.v1.Health/Watch": public("load balancers and peers probe health without a token"),
    "/grpc.health.v1.Health/List": public("load balancers and peers probe health without a token"),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": public("schema only, no data"),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": public("schema only, no data"),
}

TABLE: Mapping[str, Rule] = {
    **INFRASTRUCTURE,
    # spec §10
    **rows(
        "EmergencyService",
        {
            "RaiseEmergency": allow(c.ROLE_APP_USER, note="the caller becomes the reporter"),
            "GetEmergency": allow(
                c.ROLE_APP_USER,
                OPERATOR,
                *OFFICERS,
                note="app user: own emergencies, reporter's view (EMG-027)",
            ),
            "ListEmergencies": allow(OPERATOR, note="own center only"),
            "StreamLocation": allow(c.ROLE_APP_USER, note="reporter of the emergency only"),
            "WatchEmergency": allow(
                c.ROLE_APP_USER,
                OPERATOR,
                *OFFICERS,
                note="app user: own; officers: dispatched to their agency",
            ),
            "CancelEmergency": allow(c.ROLE_APP_USER, note="reporter of the emergency only"),
            "UpdateEmergencyState": allow(OPERATOR, *OFFICERS, note="officers: dispatched to their agency"),
        },
    ),
    # spec §11.7
    **rows(
        "SafeTripService",
        {
            "StartSafeTrip": allow(c.ROLE_APP_USER, note="the caller becomes the traveller"),
            "GetSafeTrip": allow(
                c.ROLE_APP_USER,
                c.ROLE_GUARDIAN,
                OPERATOR,
                note="app user: own; guardians: named on the trip; operators: own center's trips",
            ),
            "WatchSafeTrip": allow(
                c.ROLE_APP_USER,
                c.ROLE_GUARDIAN,
                OPERATOR,
                note="app user: own; guardians: named on the trip; operators: own center's trips",
            ),
            **{
                rpc: allow(c.ROLE_APP_USER, note="traveller of the trip only")
                for rpc in ("UpdateTripLocation", "ExtendSafeTrip", "ArriveSafeTrip", "EndSafeTrip")
            },
            "ResolveTripAlert": allow(
                c.ROLE_APP_USER,
                c.ROLE_GUARDIAN,
                OPERATOR,
                note="app user: own; guardians: named on the trip; operators: own center's trips",
            ),
        },
    ),
    # spec §12.5
    **rows(
        "CameraService",
        {
            "GetCamera": allow(OPERATOR, *OFFICERS),
            "ListCameras": allow(OPERATOR, *OFFICERS),
            "SearchNearbyCameras": allow(
                OPERATOR, *OFFICERS, note="officers: `emergency` origin only with a dispatch for it"
            ),
            "CreateVideoGrant": allow(
                *OFFICERS, note="with an acknowledged dispatch of the officer's agency (§12.3)"
            ),
            "GetVideoGrant": allow(
                OPERATOR,
                *OFFICERS,
                note="operator: without uri/token; officers: own agency's, uri/token own only",
            ),
            "RevokeVideoGrant": allow(OPERATOR, *OFFICERS, note="officers: own agency's grants (RELEASED)"),
            "ListAccessRecords": allow(OPERATOR, AUDITOR),
            "GetVideoGatewayKeys": public(
                "public keys; video gateways have no role and fetch them without a token (SEC-013)"
            ),
        },
    ),
    # spec §13
    **rows(
        "DispatchService",
        {
            "SubscribeDispatches": allow(
                OPERATOR, *OFFICERS, note="operators: any agency; officers: own agency"
            ),
            "AcknowledgeDispatch": allow(OPERATOR, *OFFICERS, note=_OWN_AGENCY),
            "UpdateDispatchStatus": allow(OPERATOR, *OFFICERS, note=_OWN_AGENCY),
            "CloseDispatch": allow(OPERATOR, *OFFICERS, note=_OWN_AGENCY),
            "GetDispatch": allow(OPERATOR, *OFFICERS, note=_OWN_AGENCY),
            "ListDispatches": allow(OPERATOR, *OFFICERS, note=_OWN_AGENCY),
        },
    ),
    # spec §14
    **rows(
        "ChildSafetyService",
        {
            **{f"{verb}Ward": allow(OPERATOR) for verb in ("Create", "Update", "Delete")},
            "GetWard": allow(c.ROLE_GUARDIAN, OPERATOR, note="guardians: own wards (CHD-012)"),
            "ListWards": allow(c.ROLE_GUARDIAN, OPERATOR, note="guardians: own wards (CHD-012)"),
            **{f"{verb}Tag": allow(OPERATOR) for verb in ("Create", "Update", "Delete")},
            "GetTag": allow(c.ROLE_GUARDIAN, OPERATOR, note="guardians: tags of own wards (CHD-012)"),
            "ListTags": allow(c.ROLE_GUARDIAN, OPERATOR, note="guardians: tags of own wards (CHD-012)"),
            **{f"{verb}Reader": allow(OPERATOR) for verb in ("Create", "Update", "Delete")},
            "GetReader": allow(c.ROLE_READER_GATEWAY, OPERATOR, note="gateways: own readers (CHD-013)"),
            "ListReaders": allow(c.ROLE_READER_GATEWAY, OPERATOR, note="gateways: own readers (CHD-013)"),
            **{f"{verb}Zone": allow(OPERATOR) for verb in ("Create", "Update", "Delete")},
            "GetZone": allow(
                c.ROLE_GUARDIAN, OPERATOR, note="guardians: not other wards' HOME zones (CHD-012)"
            ),
            "ListZones": allow(
                c.ROLE_GUARDIAN, OPERATOR, note="guardians: not other wards' HOME zones (CHD-012)"
            ),
        },
    ),
    **rows(
        "TagEventService",
        {
            "IngestTagEvents": allow(c.ROLE_READER_GATEWAY, note="events of own readers only (TAG-006)"),
            "SubmitTagEvents": allow(c.ROLE_READER_GATEWAY, note="events of own readers only (TAG-006)"),
        },
    ),
    # spec §15
    **rows(
        "GuardianService",
        {
            "StreamNotifications": allow(
                c.ROLE_GUARDIAN,
                OPERATOR,
                note="guardians: own recipient; operators: guardians/operators only",
            ),
            "ListNotifications": allow(
                c.ROLE_GUARDIAN,
                OPERATOR,
                note="guardians: own recipient; operators: guardians/operators only",
            ),
            "GetNotification": allow(
                c.ROLE_GUARDIAN, OPERATOR, note="own copies / operators' copies (GRD-010)"
            ),
            "AcknowledgeNotification": allow(
                c.ROLE_GUARDIAN, OPERATOR, note="own copies / operators' copies (GRD-010)"
            ),
            "GetWardLocation": allow(
                c.ROLE_GUARDIAN, OPERATOR, note="guardians: own wards; operators: active emergency (GRD-014)"
            ),
            "ListWardTrack": allow(
                c.ROLE_GUARDIAN, OPERATOR, note="guardians: own wards; operators: active emergency (GRD-014)"
            ),
        },
    ),
    # spec §16
    **rows(
        "DirectoryService",
        {
            "CreateCenter": allow(DIRECTORY_ADMIN),
            "UpdateCenter": allow(DIRECTORY_ADMIN),
            "GetCenter": allow(OPERATOR, AUDITOR, PEER, DIRECTORY_ADMIN),
            "ListCenters": allow(OPERATOR, AUDITOR, PEER, DIRECTORY_ADMIN),
            "ResolveCenter": allow(c.ROLE_APP_USER, OPERATOR, *OFFICERS, PEER, DIRECTORY_ADMIN),
            "GetDirectoryKeys": allow(c.ROLE_APP_USER, OPERATOR, *OFFICERS, AUDITOR, PEER, DIRECTORY_ADMIN),
        },
    ),
    # spec §17: every row needs the mTLS-verified peer to match its directory entry (FED-001).
    **rows(
        "FederationService",
        {
            "ForwardEmergency": allow(PEER, note="caller is the last `via` entry (FED-001, FED-004)"),
            "HandoffEmergency": allow(PEER, note="caller is the last `via` entry"),
            "UpdateForwardedLocation": allow(PEER, note="the emergency's home center only (FED-017)"),
            "CancelForwardedEmergency": allow(PEER, note="the emergency's home center only (FED-017)"),
            "MirrorStatus": allow(PEER, note="a current or former handling center (FED-025)"),
        },
    ),
    # spec §18
    **rows(
        "StatisticsService",
        {
            "GetIncidentStatistics": allow(
                OPERATOR, *OFFICERS, AUDITOR, note="operators: own center; officers: agency serves the center"
            ),
            "CompareZoneBeforeAfter": allow(
                OPERATOR, *OFFICERS, AUDITOR, note="operators: own center; officers: agency serves the center"
            ),
        },
    ),
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
