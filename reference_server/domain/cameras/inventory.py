"""The in-memory view of the searchable inventory: a ``CameraIndex`` plus key → camera id.

Built from the store when the server starts (:meth:`CameraInventory.load`) and kept consistent with
imports by :meth:`refresh`, which the camera plugin calls every ``POLL_INTERVAL_S`` seconds: it reads
the rows whose ``change_seq`` is newer than the last one seen and upserts/removes them in the index.
So ``ansim cameras import`` works against a running center (it writes the store; the server picks
the change up within a few seconds) as well as a stopped one.

Distances are recomputed with the haversine formula of spec §12.2 (R = 6,371,008.8 m) [CAM-014],
and equal distances are ordered by camera id (= name order) [CAM-013].
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence

from reference_server.cameras.spatial_index import CameraIndex
from reference_server.domain.ports import NearbyCamera
from reference_server.store.interface import Row

EARTH_RADIUS_M = 6_371_008.8
POLL_INTERVAL_S = 2.0
_ROWS = "SELECT key, camera_id, purpose, latitude, longitude, searchable, change_seq FROM cameras"


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the sphere of spec §12.2."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class CameraInventory:
    """Nearest-camera search over the center's searchable cameras (implements ``CameraLookup``)."""

    def __init__(self, center: str) -> None:
        self.center = center
        self._index = CameraIndex(background_rebuild=True)
        self._ids: dict[int, str] = {}
        self._points: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.change_seq = 0

    def __len__(self) -> int:
        return len(self._ids)

    # -- loading -------------------------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """Build the index from every row (blocking; at start-up)."""
        rows = conn.execute(_ROWS).fetchall()
        self.apply(
            [
                dict(
                    zip(
                        ("key", "camera_id", "purpose", "latitude", "longitude", "searchable", "change_seq"),
                        r,
                        strict=True,
                    )
                )
                for r in rows
            ]
        )

    def apply(self, rows: Iterable[Row]) -> None:
        """Take changed rows into the index (searchable ones upserted, the others removed)."""
        keys: list[int] = []
        lats: list[float] = []
        lons: list[float] = []
        purposes: list[int] = []
        gone: list[int] = []
        with self._lock:
            for row in rows:
                key = int(row["key"])
                self.change_seq = max(self.change_seq, int(row["change_seq"]))
                if row["searchable"]:
                    lat, lon = float(row["latitude"]), float(row["longitude"])
                    self._ids[key] = str(row["camera_id"])
                    self._points[key] = (lat, lon)
                    keys.append(key)
                    lats.append(lat)
                    lons.append(lon)
                    purposes.append(int(row["purpose"]))
                elif key in self._ids:
                    del self._ids[key]
                    del self._points[key]
                    gone.append(key)
            if keys:
                self._index.upsert(keys, lats, lons, purposes)
            if gone:
                self._index.remove(gone)

    async def refresh(self, fetchall: object) -> int:
        """Apply rows changed since the last seen change (``fetchall`` = ``store.fetchall``)."""
        rows: list[Row] = await fetchall(
            f"{_ROWS} WHERE change_seq > ? ORDER BY change_seq", (self.change_seq,)
        )  # type: ignore[operator]
        self.apply(rows)
        return len(rows)

    # -- search --------------------------------------------------------------------------------

    def search(
        self,
        latitude: float,
        longitude: float,
        radius_m: float,
        limit: int,
        purposes: Sequence[int] = (),
    ) -> list[tuple[int, str, float]]:
        """``(key, camera_id, distance_m)`` within ``radius_m``, nearest first, ties by id, ≤ ``limit``."""
        if limit <= 0:
            return []
        wanted = list(purposes) or None
        fetch = limit * 2 + 16
        while True:
            hits = self._index.nearest(
                latitude, longitude, fetch, max_distance_m=radius_m + 1.0, purposes=wanted
            )
            with self._lock:
                found = [
                    (key, self._ids[key], haversine_m(latitude, longitude, *self._points[key]))
                    for key, _ in hits
                    if key in self._ids
                ]
            found = [f for f in found if f[2] <= radius_m]
            found.sort(key=lambda f: (f[2], f[1]))
            # A tie at the cut-off may hide a camera with a smaller id beyond `fetch`: widen.
            if len(hits) < fetch or len(found) <= limit or found[limit][2] > found[limit - 1][2]:
                return found[:limit]
            fetch *= 4

    def nearby(self, latitude: float, longitude: float, radius_m: float, limit: int) -> list[NearbyCamera]:
        """``CameraLookup``: nearest cameras as resource names with their distances."""
        return [
            NearbyCamera(f"{self.center}/cameras/{cid}", distance)
            for _, cid, distance in self.search(latitude, longitude, radius_m, limit)
        ]
