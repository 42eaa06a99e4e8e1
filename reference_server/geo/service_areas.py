"""Which service area(s) a location falls in, with its uncertainty taken into account.

``ServiceAreaIndex`` answers "who is responsible for this caller?": the area containing the
point first, then every other area whose border lies within the uncertainty radius, so that a
caller near a border can be offered to both centres (borders in the bundled data are only good
to tens of metres).

Accuracy: distances are computed in a local equirectangular plane centred on the query point
with WGS84 radii of curvature (see ``local_metric``): exact at the point, within 0.2 % up to
10 km. ``overlap_fraction`` is estimated from a fixed sunflower pattern of sample points over
the uncertainty circle (default 128 points, so within about ±3 % for a straight border).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from reference_server.geo.local_metric import metres_per_degree

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One responsible-area candidate for a located point."""

    area_id: str
    contains: bool  # the point itself lies in this area (border included)
    distance_m: float  # 0 when contained, else distance from the point to the area's border
    overlap_fraction: float  # estimated share of the uncertainty circle inside this area


def _sunflower(n: int) -> tuple[FloatArray, FloatArray]:
    """``n`` evenly spread points over the unit disk (deterministic)."""
    i = np.arange(n, dtype=np.float64) + 0.5
    radius = np.sqrt(i / n)
    theta = i * math.pi * (3.0 - math.sqrt(5.0))
    return radius * np.cos(theta), radius * np.sin(theta)


def _segment_distances(ax: FloatArray, ay: FloatArray, bx: FloatArray, by: FloatArray) -> FloatArray:
    """Distance from the origin to each segment (a, b), all in the same planar unit."""
    dx = bx - ax
    dy = by - ay
    length2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(length2 > 0.0, -(ax * dx + ay * dy) / length2, 0.0)
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(ax + t * dx, ay + t * dy)


class ServiceAreaIndex:
    """Point-with-uncertainty → ranked service areas, over (area_id, geometry) pairs.

    Geometries are (Multi)Polygons in WGS84 with x = longitude, y = latitude.
    """

    def __init__(self, areas: Iterable[tuple[str, BaseGeometry]], *, overlap_samples: int = 128) -> None:
        ids: list[str] = []
        geoms: list[BaseGeometry] = []
        for area_id, geom in areas:
            if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
                raise ValueError(f"area {area_id!r}: geometry must be a non-empty (Multi)Polygon")
            ids.append(area_id)
            geoms.append(geom)
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate area ids")
        self._ids = ids
        self._geoms = np.array(geoms, dtype=object)
        shapely.prepare(self._geoms)
        self._area_tree = shapely.STRtree(self._geoms)

        boundaries = shapely.boundary(self._geoms)
        parts, part_owner = shapely.get_parts(boundaries, return_index=True)
        coords, coord_part = shapely.get_coordinates(parts, return_index=True)
        start = np.nonzero(coord_part[:-1] == coord_part[1:])[0]
        # One row per border segment: (ax, ay, bx, by) in degrees.
        self._segs = np.ascontiguousarray(np.hstack([coords[start], coords[start + 1]]))
        self._seg_area = part_owner[coord_part[start]].astype(np.int32)
        ax, ay, bx, by = self._segs.T
        boxes = shapely.box(np.minimum(ax, bx), np.minimum(ay, by), np.maximum(ax, bx), np.maximum(ay, by))
        self._seg_tree = shapely.STRtree(boxes)
        self._disk_x, self._disk_y = _sunflower(overlap_samples)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def area_ids(self) -> list[str]:
        return list(self._ids)

    def geometry(self, area_id: str) -> BaseGeometry:
        geom: BaseGeometry = self._geoms[self._ids.index(area_id)]
        return geom

    # -- internals -------------------------------------------------------------------------

    def _containing(self, lat: float, lon: float) -> list[int]:
        point = shapely.points(np.array((lon, lat)))
        return [int(i) for i in self._area_tree.query(point, predicate="intersects")]

    def _local_segment_distances(self, seg: npt.NDArray[np.intp], lat: float, lon: float) -> FloatArray:
        kx, ky = metres_per_degree(lat)
        local = (self._segs[seg] - (lon, lat, lon, lat)) * (kx, ky, kx, ky)
        return _segment_distances(local[:, 0], local[:, 1], local[:, 2], local[:, 3])

    def _border_distances(self, lat: float, lon: float, radius_m: float) -> dict[int, float]:
        """Minimum border distance (m) per area whose border lies within ``radius_m``."""
        kx, ky = metres_per_degree(lat)
        dlon, dlat = radius_m / kx, radius_m / ky
        seg = self._seg_tree.query(shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        if seg.size == 0:
            return {}
        d = self._local_segment_distances(seg, lat, lon)
        keep = d <= radius_m
        best: dict[int, float] = {}
        for area, dist in zip(self._seg_area[seg][keep].tolist(), d[keep].tolist(), strict=True):
            if dist < best.get(area, math.inf):
                best[area] = dist
        return best

    def _disk(self, lat: float, lon: float, radius_m: float) -> tuple[FloatArray, FloatArray]:
        kx, ky = metres_per_degree(lat)
        return lon + self._disk_x * (radius_m / kx), lat + self._disk_y * (radius_m / ky)

    def _overlap(self, area: int, disk: tuple[FloatArray, FloatArray]) -> float:
        inside = shapely.contains_xy(self._geoms[area], disk[0], disk[1])
        return float(np.count_nonzero(inside)) / float(self._disk_x.size)

    @staticmethod
    def _check(lat: float, lon: float, uncertainty_m: float) -> None:
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90.0 or abs(lon) > 180.0:
            raise ValueError(f"invalid coordinates ({lat}, {lon})")
        if not math.isfinite(uncertainty_m) or uncertainty_m < 0.0:
            raise ValueError(f"uncertainty must be finite metres >= 0, got {uncertainty_m}")

    # -- public API ------------------------------------------------------------------------

    def locate(self, lat: float, lon: float, uncertainty_m: float = 0.0) -> list[Candidate]:
        """Ranked candidates: containing area(s) first, then others by border distance.

        Returns an empty list when the point is outside every area by more than the radius.
        """
        self._check(lat, lon, uncertainty_m)
        containing = self._containing(lat, lon)
        near = self._border_distances(lat, lon, uncertainty_m) if uncertainty_m > 0.0 else {}
        others = [a for a in near if a not in containing]
        if not others and len(containing) <= 1:
            # Only one area in reach: the whole circle lies in it (or the point is nowhere).
            return [Candidate(self._ids[a], True, 0.0, 1.0) for a in containing]
        disk = self._disk(lat, lon, uncertainty_m)
        result = [
            Candidate(self._ids[a], True, 0.0, self._overlap(a, disk) if uncertainty_m > 0.0 else 1.0)
            for a in containing
        ]
        result.sort(key=lambda c: (-c.overlap_fraction, c.area_id))
        rest = [Candidate(self._ids[a], False, near[a], self._overlap(a, disk)) for a in others]
        rest.sort(key=lambda c: (c.distance_m, c.area_id))
        return result + rest

    def nearest_area(self, lat: float, lon: float) -> Candidate | None:
        """Default route: the containing area, else the area with the nearest border.

        ``overlap_fraction`` is 1 when contained, else 0. ``None`` only for an empty index.
        """
        self._check(lat, lon, 0.0)
        containing = self._containing(lat, lon)
        if containing:
            return Candidate(self._ids[containing[0]], True, 0.0, 1.0)
        if not self._ids:
            return None
        # The nearest box in degree space gives an upper bound on the metric border distance;
        # every border closer than that bound is then examined in metres.
        seg = self._seg_tree.query_nearest(shapely.points(lon, lat))
        bound = float(np.max(self._local_segment_distances(seg, lat, lon)))
        near = self._border_distances(lat, lon, bound * (1.0 + 1e-9) + 1e-6)
        area, dist = min(near.items(), key=lambda item: (item[1], self._ids[item[0]]))
        return Candidate(self._ids[area], False, dist, 0.0)


def municipality_index() -> ServiceAreaIndex:
    """Index over the bundled 2018 municipality boundaries, keyed by Statistics Korea code."""
    from reference_server.geo.municipalities import load_municipalities

    return ServiceAreaIndex((m.area_id, m.geometry) for m in load_municipalities())
