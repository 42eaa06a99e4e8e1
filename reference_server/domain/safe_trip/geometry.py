"""Corridor geometry of spec §11.4: is a fix outside the route corridor?"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from ansim.v1 import common_pb2, safe_trip_pb2

EARTH_RADIUS_M = 6_371_008.8
#: Radius assumed for a fix without one, by positioning method (spec §2.1, LOC-003).
TYPICAL_RADIUS_M = {
    common_pb2.POSITIONING_METHOD_GNSS: 50.0,
    common_pb2.POSITIONING_METHOD_WIFI: 100.0,
    common_pb2.POSITIONING_METHOD_FUSED: 75.0,
    common_pb2.POSITIONING_METHOD_CELL: 1000.0,
    common_pb2.POSITIONING_METHOD_TAG_READER: 30.0,
    common_pb2.POSITIONING_METHOD_BELL: 30.0,
    common_pb2.POSITIONING_METHOD_MANUAL: 200.0,
}
#: The uncertainty counted in the off-route test is at most this (spec §11.4).
MAX_COUNTED_RADIUS_M = 100.0


def effective_radius(location: common_pb2.Location) -> float:
    """The fix's horizontal uncertainty as §11.4 counts it: LOC-003's reading, at most 100 m."""
    radius = location.radius_m or TYPICAL_RADIUS_M.get(location.method, 1000.0)
    return min(radius, MAX_COUNTED_RADIUS_M)


def _to_xy(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    """Local equirectangular projection around (lat0, lon0), metres."""
    x = math.radians(lon - lon0) * math.cos(math.radians(lat0)) * EARTH_RADIUS_M
    y = math.radians(lat - lat0) * EARTH_RADIUS_M
    return x, y


def distance_to_polyline_m(lat: float, lon: float, polyline: Sequence[common_pb2.Point]) -> float:
    """Distance from the point to the nearest point of the polyline (metres, local projection,
    accurate to well under a metre at corridor scales)."""
    best = math.inf
    for a, b in itertools.pairwise(polyline):
        ax, ay = _to_xy(a.latitude, a.longitude, lat, lon)
        bx, by = _to_xy(b.latitude, b.longitude, lat, lon)
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def outside_corridor(location: common_pb2.Location, corridor: safe_trip_pb2.RouteCorridor) -> bool:
    """True when the fix lies outside the corridor as spec §11.4 defines it."""
    distance = distance_to_polyline_m(location.latitude, location.longitude, corridor.polyline)
    return distance > corridor.width_m / 2 + effective_radius(location)
