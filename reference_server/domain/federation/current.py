"""What the home center sends about an emergency raised here: its state *now* (spec §17.3, §17.4,
§17.6, §17.9).

A forward, a recovery forward after a fallback [FED-015] and a handoff by the home center
[FED-019] all carry a ForwardedEmergency. The one recorded when the SOS was first routed is not
enough for the later ones: she may have moved, cancelled with her duress code (§10, EMG-013), or
an operator may have changed the nature or her shared profile since. :func:`current_forwarded`
rebuilds it from the emergency as the emergency area holds it now, keeping the track of earlier
fixes, so that the responsible center is resolved for her latest fix and gets the current state.
"""

from __future__ import annotations

from datetime import datetime

from ansim.v1 import common_pb2, emergency_pb2, federation_pb2

from reference_server.domain.ports import EmergencyIntake

TRACK_MAX = 60
_ENDED = (
    emergency_pb2.EMERGENCY_STATE_RESOLVED,
    emergency_pb2.EMERGENCY_STATE_CANCELLED,
    emergency_pb2.EMERGENCY_STATE_TRANSFERRED,
)


def forwarded_of(emergency: emergency_pb2.Emergency, now: datetime) -> federation_pb2.ForwardedEmergency:
    """What a handling center gets about an emergency raised here (nothing more) [§17.9]."""
    forwarded = federation_pb2.ForwardedEmergency(
        incident_id=emergency.incident_id,
        home_emergency=emergency.name,
        kind=emergency.kind,
        mode=emergency.mode,
        location=emergency.last_location,
        nature=emergency.nature,
        duress=emergency.duress,
    )
    if emergency.HasField("civic_address"):
        forwarded.address.CopyFrom(emergency.civic_address)
    if emergency.HasField("profile"):
        forwarded.profile.CopyFrom(emergency.profile)
    if emergency.HasField("raise_time"):
        forwarded.raise_time.CopyFrom(emergency.raise_time)
    elif emergency.HasField("create_time"):
        forwarded.raise_time.CopyFrom(emergency.create_time)
    else:
        forwarded.raise_time.FromDatetime(now)
    return forwarded


def _fix_time(location: common_pb2.Location) -> tuple[int, int]:
    return (location.fix_time.seconds, location.fix_time.nanos)


def with_latest_fix(
    forwarded: federation_pb2.ForwardedEmergency, fix: common_pb2.Location
) -> federation_pb2.ForwardedEmergency:
    """``forwarded`` with ``fix`` as current location when it is newer (LOC-004); the replaced
    location goes to the end of the track (at most 60 fixes)."""
    if not fix.ByteSize() or (
        forwarded.location.ByteSize() and _fix_time(fix) <= _fix_time(forwarded.location)
    ):
        return forwarded
    updated = federation_pb2.ForwardedEmergency()
    updated.CopyFrom(forwarded)
    if forwarded.location.ByteSize():
        updated.track.append(forwarded.location)
        del updated.track[:-TRACK_MAX]
    updated.location.CopyFrom(fix)
    return updated


async def current_forwarded(
    emergencies: EmergencyIntake | None, sent: federation_pb2.ForwardedEmergency, now: datetime
) -> federation_pb2.ForwardedEmergency | None:
    """The emergency ``sent`` describes, as it is now: current duress flag, nature, profile and
    address, and her latest fix (the newer of the emergency's and ``sent``'s), with ``sent``'s track
    kept. ``sent`` as it is when the emergency area is not reachable; None once the emergency ended
    (a recovery forward is due only while it is active [FED-015])."""
    emergency = await emergencies.get(sent.home_emergency) if emergencies is not None else None
    if emergency is None:
        return sent
    if emergency.state in _ENDED:  # a duress cancel keeps the true state active [EMG-015]
        return None
    fresh = forwarded_of(emergency, now)
    fresh.track.extend(sent.track)
    fresh.location.CopyFrom(sent.location)
    return with_latest_fix(fresh, emergency.last_location)
