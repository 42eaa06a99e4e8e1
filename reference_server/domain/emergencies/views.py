"""Who sees what of an emergency (spec §10.7, EMG-027): the reporter's view and the staff view."""

from __future__ import annotations

from ansim.v1 import emergency_pb2

#: Event types never sent to the reporter [EMG-027].
STAFF_ONLY_EVENTS = frozenset(
    {
        emergency_pb2.EMERGENCY_EVENT_TYPE_CAMERAS_CHANGED,
        emergency_pb2.EMERGENCY_EVENT_TYPE_LOCATION_UPDATED,
        emergency_pb2.EMERGENCY_EVENT_TYPE_DURESS_SIGNALLED,
    }
)


def reporter_view(true: emergency_pb2.Emergency) -> emergency_pb2.Emergency:
    """The emergency as its reporter may see it (before any duress cancel)."""
    view = emergency_pb2.Emergency()
    view.CopyFrom(true)
    del view.selected_cameras[:]
    del view.location_summary.recent_fixes[:]
    view.status_note = ""
    for entry in view.dispatched_agencies:
        entry.dispatch = ""
    view.duress = False
    view.ClearField("duress_time")
    return view


def reporter_state_change(change: emergency_pb2.EmergencyStateChange) -> emergency_pb2.EmergencyStateChange:
    """A state change as the reporter sees it: no actor, no note [EMG-027]."""
    return emergency_pb2.EmergencyStateChange(previous_state=change.previous_state, state=change.state)


def reporter_dispatch(entry: emergency_pb2.DispatchedAgency) -> emergency_pb2.DispatchedAgency:
    view = emergency_pb2.DispatchedAgency()
    view.CopyFrom(entry)
    view.dispatch = ""
    return view
