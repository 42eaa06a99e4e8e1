"""The in-memory view of the searchable inventory: a ``CameraIndex`` plus key → camera id.

Built from the store when the server starts (:meth:`CameraInventory.load`) and kept consistent with
imports by :meth:`refresh`, which the camera plugin calls every ``POLL_INTERVAL_S`` seconds: it reads
the rows whose ``change_seq`` is newer than the last one seen and upserts/removes them in the index.
So ``ansim cameras import`` works against a running center (it writes the store; the server picks
the change up within a few seconds) as well as a stopped one.

Distances are recomputed with the haversine formula of spec §12.2 (R = 6,371,008.8 m) [CAM-014],
and equal distances are ordered by camera id (= name order) [CAM-013].

Memory: with the national dataset (1.6 M cameras) per-camera Python objects (a dict entry, an id
string, a coordinate tuple: ~300 bytes each) cost more than the index itself, so the key → (camera
id, latitude, longitude) table is kept in NumPy arrays sorted by key, the ids UTF-8 in one byte
buffer, with a dict only for the rows changed since the arrays were last compacted; start-up reads
the store in chunks instead of materialising every row.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from reference_server.cameras.spatial_index import CameraIndex
from reference_server.domain.cameras.nearby_memo import NearbyMemo
from reference_server.domain.ports import NearbyCamera
from reference_server.store.interface import Row

EARTH_RADIUS_M = 6_371_008.8
POLL_INTERVAL_S = 2.0
_ROWS = "SELECT key, camera_id, purpose, latitude, longitude, searchable, change_seq FROM cameras"
_COLUMNS = ("key", "camera_id", "purpose", "latitude", "longitude", "searchable", "change_seq")
LOAD_CHUNK_ROWS = 50_000
#: Changed rows kept in a dict before they are folded into the arrays (plus 5 % of the arrays).
COMPACT_AFTER = 20_000


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the sphere of spec §12.2."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


Entry = tuple[str, float, float]  # camera id, latitude, longitude


class _Table:
    """key → (camera id, latitude, longitude), compact (see module docstring). Not thread-safe."""

    def __init__(self) -> None:
        self._keys: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._lats: npt.NDArray[np.float64] = np.empty(0, np.float64)
        self._lons: npt.NDArray[np.float64] = np.empty(0, np.float64)
        self._starts: npt.NDArray[np.int64] = np.empty(0, np.int64)  # of the id in _blob
        self._ids = bytearray()  # ids of the array rows in key order, UTF-8, back to back
        self._changed: dict[int, Entry | None] = {}  # None: removed
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _base(self, key: int) -> Entry | None:
        i = int(np.searchsorted(self._keys, key))
        if i == self._keys.size or int(self._keys[i]) != key:
            return None
        start = int(self._starts[i])
        end = int(self._starts[i + 1]) if i + 1 < self._starts.size else len(self._ids)
        return self._ids[start:end].decode(), float(self._lats[i]), float(self._lons[i])

    def get(self, key: int) -> Entry | None:
        if key in self._changed:
            return self._changed[key]
        return self._base(key)

    def put(self, key: int, entry: Entry | None) -> None:
        before = self.get(key) is not None
        self._changed[key] = entry
        self._count += (entry is not None) - before
        if len(self._changed) > COMPACT_AFTER + self._keys.size // 20:
            self.compact()

    def extend_sorted(
        self,
        keys: npt.NDArray[np.int64],
        lats: npt.NDArray[np.float64],
        lons: npt.NDArray[np.float64],
        ids: list[str],
    ) -> None:
        """Append rows whose keys are all greater than every key held (loading in key order)."""
        encoded = [i.encode() for i in ids]
        lengths = np.fromiter((len(b) for b in encoded), np.int64, len(encoded))
        starts = len(self._ids) + np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        self._ids += b"".join(encoded)
        self._keys = np.concatenate([self._keys, keys])
        self._lats = np.concatenate([self._lats, lats])
        self._lons = np.concatenate([self._lons, lons])
        self._starts = np.concatenate([self._starts, starts])
        self._count += int(keys.size)

    def compact(self) -> None:
        """Fold the changed rows into the arrays (ids rewritten: the buffer holds no garbage)."""
        changed = self._changed
        if not changed:
            return
        keep = ~np.isin(self._keys, np.fromiter(changed, np.int64, len(changed)))
        added = sorted((k, e) for k, e in changed.items() if e is not None)
        old_ids, old_starts = self._ids, self._starts
        ends = np.append(old_starts[1:], len(old_ids)) if old_starts.size else old_starts
        kept = np.flatnonzero(keep)
        pieces = [bytes(old_ids[int(a) : int(b)]) for a, b in zip(old_starts[kept], ends[kept], strict=True)]
        pieces += [e[0].encode() for _, e in added]
        keys = np.concatenate([self._keys[kept], np.array([k for k, _ in added], np.int64)])
        lats = np.concatenate([self._lats[kept], np.array([e[1] for _, e in added], np.float64)])
        lons = np.concatenate([self._lons[kept], np.array([e[2] for _, e in added], np.float64)])
        order = np.argsort(keys, kind="stable")
        pieces = [pieces[i] for i in order.tolist()]
        lengths = np.fromiter((len(b) for b in pieces), np.int64, len(pieces))
        self._starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        self._ids = bytearray(b"".join(pieces))
        self._keys, self._lats, self._lons = keys[order], lats[order], lons[order]
        self._changed = {}

    def nbytes(self) -> int:
        arrays = self._keys.nbytes + self._lats.nbytes + self._lons.nbytes + self._starts.nbytes
        return int(arrays) + len(self._ids) + 150 * len(self._changed)


class CameraInventory:
    """Nearest-camera search over the center's searchable cameras (implements ``CameraLookup``)."""

    def __init__(self, center: str) -> None:
        self.center = center
        self._index = CameraIndex(background_rebuild=True)
        self._table = _Table()
        self._lock = threading.Lock()
        self.change_seq = 0
        #: Bumped (under the lock) whenever the searchable set may have changed.
        self._version = 0
        self._memo = NearbyMemo()

    def __len__(self) -> int:
        return len(self._table)

    # -- loading -------------------------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """Build the index from every row (blocking; at start-up), reading the store in chunks."""
        cursor = conn.execute(
            "SELECT key, camera_id, purpose, latitude, longitude, change_seq FROM cameras"
            " WHERE searchable ORDER BY key"
        )
        table = _Table()
        purposes: list[npt.NDArray[np.int64]] = []
        seq = self.change_seq
        while rows := cursor.fetchmany(LOAD_CHUNK_ROWS):
            keys, ids, purpose, lats, lons, seqs = zip(*rows, strict=True)
            table.extend_sorted(
                np.array(keys, np.int64), np.array(lats, np.float64), np.array(lons, np.float64), list(ids)
            )
            purposes.append(np.array(purpose, np.int64))
            seq = max(seq, *seqs)
        row = conn.execute("SELECT MAX(change_seq) FROM cameras").fetchone()
        seq = max(seq, int(row[0] or 0))
        index = CameraIndex(
            table._keys,
            table._lats,
            table._lons,
            np.concatenate(purposes) if purposes else None,
            background_rebuild=True,
        )
        with self._lock:
            self._table, self._index, self.change_seq = table, index, seq
            self._version += 1

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
                    self._table.put(key, (str(row["camera_id"]), lat, lon))
                    keys.append(key)
                    lats.append(lat)
                    lons.append(lon)
                    purposes.append(int(row["purpose"]))
                elif self._table.get(key) is not None:
                    self._table.put(key, None)
                    gone.append(key)
            if keys:
                self._index.upsert(keys, lats, lons, purposes)
            if gone:
                self._index.remove(gone)
            if keys or gone:
                self._version += 1

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
                entries = [(key, self._table.get(key)) for key, _ in hits]
            found = [
                (key, e[0], haversine_m(latitude, longitude, e[1], e[2]))
                for key, e in entries
                if e is not None
            ]
            found = [f for f in found if f[2] <= radius_m]
            found.sort(key=lambda f: (f[2], f[1]))
            # A tie at the cut-off may hide a camera with a smaller id beyond `fetch`: widen.
            if len(hits) < fetch or len(found) <= limit or found[limit][2] > found[limit - 1][2]:
                return found[:limit]
            fetch *= 4

    def nearby(self, latitude: float, longitude: float, radius_m: float, limit: int) -> list[NearbyCamera]:
        """``CameraLookup``: nearest cameras as resource names with their distances; the same question
        while the inventory is unchanged is answered from the memo."""
        question = (latitude, longitude, radius_m, limit)
        with self._lock:
            version = self._version
            known = self._memo.get(question, version)
        if known is not None:
            return known
        found = [
            NearbyCamera(f"{self.center}/cameras/{cid}", distance)
            for _, cid, distance in self.search(latitude, longitude, radius_m, limit)
        ]
        with self._lock:  # kept under the version read before the search: a change since voids it
            self._memo.put(question, version, found)
        return found
