"""Where and when: point-in-area (WGS84) and Asia/Seoul schedule windows (§14.2, §14.5.2)."""

from __future__ import annotations

import math
from datetime import datetime

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2

from reference_server.domain.child_safety.common import KST

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _in_ring(lat: float, lon: float, ring: common_pb2.Ring) -> bool:
    inside = False
    vertices = list(ring.vertices)
    j = len(vertices) - 1
    for i, v in enumerate(vertices):
        w = vertices[j]
        if (v.latitude > lat) != (w.latitude > lat):
            cross = (w.longitude - v.longitude) * (lat - v.latitude) / (w.latitude - v.latitude) + v.longitude
            if lon < cross:
                inside = not inside
        j = i
    return inside


def in_area(lat: float, lon: float, area: common_pb2.Area) -> bool:
    if any(distance_m(lat, lon, c.center.latitude, c.center.longitude) <= c.radius_m for c in area.circles):
        return True
    return any(_in_ring(lat, lon, ring) for ring in area.polygons)


def local(moment: datetime) -> datetime:
    return moment.astimezone(KST)


def window_contains(window: cs.LocalTimeWindow, moment: datetime) -> bool:
    """Whether the Asia/Seoul weekday and time of ``moment`` lie in ``window`` (end exclusive)."""
    here = local(moment)
    weekday = here.isoweekday()  # 1 = Monday … 7 = Sunday, as google.type.DayOfWeek
    if weekday not in window.weekdays:
        return False
    hhmm = here.strftime("%H:%M")
    return window.start_local_time <= hhmm < window.end_local_time


def zone_active(zone: cs.Zone, moment: datetime) -> bool:
    """A DANGER zone is active when it has no windows or one contains ``moment`` (§14.5.2)."""
    return not zone.active_windows or any(window_contains(w, moment) for w in zone.active_windows)
