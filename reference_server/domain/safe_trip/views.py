"""Who may see a trip, and what each caller sees of it (spec §11.7, TRIP-015)."""

from __future__ import annotations

from ansim.v1 import common_pb2, error_pb2, safe_trip_pb2

from ansim_sdk.errors import AnsimError
from reference_server.domain.safe_trip.model import ACTIVE_STATES, TripRecord
from reference_server.security.caller import Caller

NOT_OWNER = error_pb2.ERROR_REASON_NOT_OWNER


def is_traveler(caller: Caller, record: TripRecord) -> bool:
    return caller.role == common_pb2.ROLE_APP_USER and caller.subject == record.traveler


def is_guardian(caller: Caller, record: TripRecord) -> bool:
    return caller.role == common_pb2.ROLE_GUARDIAN and any(
        g.subject_id and g.subject_id == caller.subject for g in record.trip.guardians
    )


def is_operator(caller: Caller, record: TripRecord) -> bool:
    return caller.role == common_pb2.ROLE_CENTER_OPERATOR and caller.center == record.center


def require_traveler(caller: Caller, record: TripRecord) -> None:
    if not is_traveler(caller, record):
        raise AnsimError(NOT_OWNER, "only the traveller of this safe trip may do this")


def require_reader(caller: Caller, record: TripRecord) -> None:
    """GetSafeTrip, WatchSafeTrip and ResolveTripAlert: traveller, named guardian, own-center operator."""
    if not (is_traveler(caller, record) or is_guardian(caller, record) or is_operator(caller, record)):
        raise AnsimError(
            NOT_OWNER, "this safe trip is not the caller's (traveller, named guardian, operator)"
        )


def view(
    caller: Caller, record: TripRecord, trip: safe_trip_pb2.SafeTrip | None = None
) -> safe_trip_pb2.SafeTrip:
    """``trip`` (default: the stored public body) as ``caller`` may see it."""
    out = safe_trip_pb2.SafeTrip()
    out.CopyFrom(trip if trip is not None else record.trip)
    if is_operator(caller, record):
        if record.duress_emergency.startswith("centers/") and not out.emergency:
            out.emergency = record.duress_emergency  # operators see the silent emergency (TRIP-013)
        return out
    if caller.role == common_pb2.ROLE_GUARDIAN:
        out.ClearField("profile")
        for guardian in out.guardians:
            if guardian.subject_id != caller.subject:
                guardian.phone = ""
                guardian.subject_id = ""
        if out.state not in ACTIVE_STATES:
            out.ClearField("last_location")
    return out
