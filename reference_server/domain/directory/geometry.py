"""Wire geometry (``Area``, ``Location``) ↔ shapely, and the uncertainty region of a location.

Coordinates are WGS84 with x = longitude, y = latitude. Metric operations (circle buffers) use the
local equirectangular plane of :mod:`reference_server.geo.local_metric`, which is accurate to a few
tenths of a percent within the sizes that matter here (uncertainty regions, border distances).
"""

from __future__ import annotations

import math

import shapely
from ansim.v1 import common_pb2
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from reference_server.geo.local_metric import metres_per_degree

#: Assumed radius (m) per PositioningMethod when ``radius_m`` is 0 [LOC-003] (spec §2.1).
TYPICAL_ERROR_M: dict[int, float] = {
    common_pb2.POSITIONING_METHOD_UNSPECIFIED: 1000.0,
    common_pb2.POSITIONING_METHOD_GNSS: 50.0,
    common_pb2.POSITIONING_METHOD_WIFI: 100.0,
    common_pb2.POSITIONING_METHOD_CELL: 1000.0,
    common_pb2.POSITIONING_METHOD_FUSED: 75.0,
    common_pb2.POSITIONING_METHOD_TAG_READER: 30.0,
    common_pb2.POSITIONING_METHOD_BELL: 30.0,
    common_pb2.POSITIONING_METHOD_MANUAL: 200.0,
}
#: Vertices of a circle approximated as a polygon.
CIRCLE_VERTICES = 64


def metric_circle(lat: float, lon: float, radius_m: float, vertices: int = CIRCLE_VERTICES) -> Polygon:
    """A circle of ``radius_m`` metres around the point, as a WGS84 polygon."""
    kx, ky = metres_per_degree(lat)
    points = [
        (lon + radius_m * math.sin(a) / kx, lat + radius_m * math.cos(a) / ky)
        for a in (2.0 * math.pi * i / vertices for i in range(vertices))
    ]
    return Polygon(points)


def _ellipse(lat: float, lon: float, ellipse: common_pb2.Location.Ellipse) -> Polygon:
    kx, ky = metres_per_degree(lat)
    theta = math.radians(ellipse.orientation_deg)  # clockwise from north
    points = []
    for i in range(CIRCLE_VERTICES):
        a = 2.0 * math.pi * i / CIRCLE_VERTICES
        major, minor = ellipse.semi_major_m * math.cos(a), ellipse.semi_minor_m * math.sin(a)
        north = major * math.cos(theta) - minor * math.sin(theta)
        east = major * math.sin(theta) + minor * math.cos(theta)
        points.append((lon + east / kx, lat + north / ky))
    return Polygon(points)


def uncertainty_radius(location: common_pb2.Location) -> float:
    """The radius (m) of a circle around the point that covers the location's uncertainty region."""
    shape = location.WhichOneof("shape")
    if shape == "ellipse":
        return location.ellipse.semi_major_m
    if shape == "polygon":
        kx, ky = metres_per_degree(location.latitude)
        return max(
            math.hypot((v.longitude - location.longitude) * kx, (v.latitude - location.latitude) * ky)
            for v in location.polygon.vertices
        )
    if location.radius_m > 0:
        return location.radius_m
    return TYPICAL_ERROR_M.get(location.method, 1000.0)


def uncertainty_region(location: common_pb2.Location) -> BaseGeometry:
    """The location's uncertainty region: its ellipse or polygon, else its circle [LOC-003]."""
    shape = location.WhichOneof("shape")
    if shape == "ellipse":
        return _ellipse(location.latitude, location.longitude, location.ellipse)
    if shape == "polygon":
        polygon = Polygon([(v.longitude, v.latitude) for v in location.polygon.vertices])
        return polygon if polygon.is_valid else polygon.convex_hull
    return metric_circle(location.latitude, location.longitude, uncertainty_radius(location))


def ring_polygon(ring: common_pb2.Ring) -> Polygon:
    return Polygon([(v.longitude, v.latitude) for v in ring.vertices])


def area_geometry(area: common_pb2.Area) -> BaseGeometry:
    """The union of an Area's polygons and circles."""
    parts: list[BaseGeometry] = [ring_polygon(r) for r in area.polygons]
    parts += [metric_circle(c.center.latitude, c.center.longitude, c.radius_m) for c in area.circles]
    valid = [p if p.is_valid else shapely.make_valid(p) for p in parts]
    return shapely.union_all(valid)


def self_intersecting_rings(area: common_pb2.Area) -> list[int]:
    """Indices of the polygons whose ring is not simple (crosses or touches itself) [DIR-006]."""
    bad = []
    for index, ring in enumerate(area.polygons):
        line = shapely.LinearRing([(v.longitude, v.latitude) for v in ring.vertices])
        if not line.is_simple:
            bad.append(index)
    return bad


def geometry_area(geometry: BaseGeometry, tolerance_deg: float = 0.0) -> common_pb2.Area:
    """An Area from a (Multi)Polygon: one ring per polygon (holes dropped, the wire has none)."""
    if tolerance_deg > 0:
        geometry = geometry.simplify(tolerance_deg, preserve_topology=True)
    polygons = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    area = common_pb2.Area()
    for polygon in polygons:
        if not isinstance(polygon, Polygon) or polygon.is_empty:
            continue
        ring = area.polygons.add()
        for x, y in list(polygon.exterior.coords)[:-1]:
            ring.vertices.add(latitude=y, longitude=x)
    return area


def contains_region(boundary: BaseGeometry, location: common_pb2.Location) -> bool:
    """True when the location's whole uncertainty region lies inside ``boundary`` [DIR-019]."""
    return bool(boundary.contains(uncertainty_region(location)))


def intersects_region(area: BaseGeometry, location: common_pb2.Location) -> bool:
    """True when the location's uncertainty region (or its point) touches ``area``."""
    point = Point(location.longitude, location.latitude)
    return bool(area.intersects(point) or area.intersects(uncertainty_region(location)))
