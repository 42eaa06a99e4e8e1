"""The emergency lifecycle of spec §10.3: active and terminal states and who may move what."""

from __future__ import annotations

from ansim.v1 import common_pb2, emergency_pb2

E = emergency_pb2

ACTIVE = frozenset(
    {
        E.EMERGENCY_STATE_PENDING,
        E.EMERGENCY_STATE_RAISED,
        E.EMERGENCY_STATE_ACKNOWLEDGED,
        E.EMERGENCY_STATE_DISPATCHED,
        E.EMERGENCY_STATE_ON_SCENE,
    }
)
TERMINAL = frozenset({E.EMERGENCY_STATE_RESOLVED, E.EMERGENCY_STATE_CANCELLED, E.EMERGENCY_STATE_TRANSFERRED})

#: UpdateEmergencyState transitions (from, to) per caller role [EMG-017].
_OPERATOR = frozenset(
    {
        (E.EMERGENCY_STATE_RAISED, E.EMERGENCY_STATE_ACKNOWLEDGED),
        (E.EMERGENCY_STATE_ACKNOWLEDGED, E.EMERGENCY_STATE_ON_SCENE),
        (E.EMERGENCY_STATE_DISPATCHED, E.EMERGENCY_STATE_ON_SCENE),
        (E.EMERGENCY_STATE_RAISED, E.EMERGENCY_STATE_RESOLVED),
        (E.EMERGENCY_STATE_ACKNOWLEDGED, E.EMERGENCY_STATE_RESOLVED),
        (E.EMERGENCY_STATE_DISPATCHED, E.EMERGENCY_STATE_RESOLVED),
        (E.EMERGENCY_STATE_ON_SCENE, E.EMERGENCY_STATE_RESOLVED),
        (E.EMERGENCY_STATE_RAISED, E.EMERGENCY_STATE_CANCELLED),
        (E.EMERGENCY_STATE_ACKNOWLEDGED, E.EMERGENCY_STATE_CANCELLED),
    }
)
_OFFICER = frozenset(
    {
        (E.EMERGENCY_STATE_DISPATCHED, E.EMERGENCY_STATE_ON_SCENE),
        (E.EMERGENCY_STATE_DISPATCHED, E.EMERGENCY_STATE_RESOLVED),
        (E.EMERGENCY_STATE_ON_SCENE, E.EMERGENCY_STATE_RESOLVED),
    }
)
#: Targets an officer may never request (PERMISSION_DENIED / ROLE_NOT_PERMITTED, spec §10.9).
OFFICER_FORBIDDEN_TARGETS = frozenset({E.EMERGENCY_STATE_ACKNOWLEDGED, E.EMERGENCY_STATE_CANCELLED})


def allowed(role: int, current: int, target: int) -> bool:
    """Whether ``role`` may move an emergency from ``current`` to ``target`` by UpdateEmergencyState."""
    if role == common_pb2.ROLE_CENTER_OPERATOR:
        return (current, target) in _OPERATOR
    if role in (common_pb2.ROLE_POLICE_OFFICER, common_pb2.ROLE_FIRE_OFFICER):
        return (current, target) in _OFFICER
    return False


def is_active(state: int) -> bool:
    return state in ACTIVE
