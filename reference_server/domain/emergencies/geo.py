"""Great-circle distances and Area membership for emergencies and dispatch filters."""

from __future__ import annotations

import math

from ansim.v1 import common_pb2
from shapely.geometry import Point, Polygon

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def in_area(point: common_pb2.Point, area: common_pb2.Area) -> bool:
    """Whether ``point`` lies in one of the area's polygons (border included) or circles."""
    for circle in area.circles:
        c = circle.center
        if distance_m(c.latitude, c.longitude, point.latitude, point.longitude) <= circle.radius_m:
            return True
    here = Point(point.longitude, point.latitude)
    for ring in area.polygons:
        if len(ring.vertices) >= 3:
            polygon = Polygon([(v.longitude, v.latitude) for v in ring.vertices])
            if polygon.is_valid and polygon.covers(here):
                return True
    return False
