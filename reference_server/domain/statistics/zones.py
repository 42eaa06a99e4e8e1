"""The zones that count for statistics (kind SAFE_ZONE, SCHOOL or DANGER) and point-in-zone.

Zones belong to the child-safety area (spec §14.3); this reads them from its registry table
(``cs_resources``, collection ``zones``) when that table exists — a center without child safety has
no zones, and every incident falls in the "" bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ansim.v1 import child_safety_pb2, common_pb2

from reference_server.store.interface import Params, Row

COUNTED_KINDS = frozenset(
    {
        child_safety_pb2.ZONE_KIND_SAFE_ZONE,
        child_safety_pb2.ZONE_KIND_SCHOOL,
        child_safety_pb2.ZONE_KIND_DANGER,
    }
)
EARTH_RADIUS_M = 6_371_008.8


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


@dataclass(frozen=True)
class ZoneInfo:
    name: str
    kind: int
    area: common_pb2.Area
    registered: datetime | None


async def all_zones(q: Reader) -> dict[str, ZoneInfo]:
    """Every zone of the center (any kind), by name."""
    exists = await q.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cs_resources'")
    if exists is None:
        return {}
    out: dict[str, ZoneInfo] = {}
    for row in await q.fetchall("SELECT name, body FROM cs_resources WHERE collection = 'zones'"):
        zone = child_safety_pb2.Zone.FromString(bytes(row["body"]))
        registered = zone.create_time.ToDatetime(tzinfo=UTC) if zone.HasField("create_time") else None
        out[str(row["name"])] = ZoneInfo(str(row["name"]), zone.kind, zone.area, registered)
    return out


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _in_ring(lat: float, lon: float, ring: common_pb2.Ring) -> bool:
    inside = False
    vertices = list(ring.vertices)
    for a, b in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        if (a.latitude > lat) != (b.latitude > lat):
            cross = a.longitude + (lat - a.latitude) * (b.longitude - a.longitude) / (b.latitude - a.latitude)
            if lon < cross:
                inside = not inside
    return inside


def contains(area: common_pb2.Area, lat: float, lon: float) -> bool:
    if any(_in_ring(lat, lon, ring) for ring in area.polygons):
        return True
    return any(
        _distance_m(lat, lon, c.center.latitude, c.center.longitude) <= c.radius_m for c in area.circles
    )
