"""Nearest-camera search over up to a few million cameras, with immediate updates.

Points live on a sphere of radius 6,371,008.8 m (the IUGG mean radius) as 3-D unit vectors in a
``scipy.spatial.cKDTree``. The straight-line (chord) distance between unit vectors is monotone
in the great-circle distance, so k-nearest order is exact, and a radius query converts metres to
the equivalent chord (c = 2·sin(d / 2R)) and back (d = 2R·asin(c / 2)); reported distances are
great-circle metres on that sphere (within about 0.5 % of ellipsoidal distances).

Updates never wait for a rebuild: ``upsert`` and ``remove`` tombstone the tree's copy of a
camera and keep new positions in a small delta searched by brute force, so every query sees the
change at once. When the delta or the tombstones pass a threshold the tree is rebuilt, in a
background thread by default; updates made during that rebuild are journalled and replayed onto
the new tree before it replaces the old one.

Camera keys are non-negative int32 values assigned by the caller (the camera store maps them to
관리번호). Purposes are small integer codes (see ``purposes.Purpose``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from reference_server.cameras.cell_grid import CellGrid

EARTH_RADIUS_M = 6_371_008.8
_MAX_KEY = np.iinfo(np.int32).max
_CHORD_SLACK = 1.0 + 1e-12  # keeps points exactly on the radius after float rounding

FloatArray = npt.NDArray[np.float64]
Hit = tuple[int, float]  # (camera key, great-circle distance in metres)


def unit_vectors(lats: npt.ArrayLike, lons: npt.ArrayLike) -> FloatArray:
    """(n, 3) unit vectors for WGS84 latitudes/longitudes in degrees (spherical model)."""
    lat = np.radians(np.asarray(lats, dtype=np.float64))
    lon = np.radians(np.asarray(lons, dtype=np.float64))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=-1)


def _unit_vector(lat: float, lon: float) -> FloatArray:
    """Scalar fast path of ``unit_vectors`` for queries."""
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90.0 or abs(lon) > 180.0:
        raise ValueError(f"invalid coordinates ({lat}, {lon})")
    phi, lam = math.radians(lat), math.radians(lon)
    cos_phi = math.cos(phi)
    return np.array((cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)))


# Module-level names for the NumPy calls of the radius fast path: it makes ≈ 20 of them per
# query, and an attribute lookup on ``np`` costs about a tenth of a small call.
_count_nonzero, _lexsort, _sqrt, _arcsin = (
    np.count_nonzero,
    np.lexsort,
    np.sqrt,
    np.arcsin,
)
_vecdot = np.vecdot
_TWO_R = 2.0 * EARTH_RADIUS_M


def _squared_chords(diff: FloatArray) -> FloatArray:
    """Row-wise squared length of (n, 3) differences: the one formula every query path uses, so
    that equal positions give equal chords on every path."""
    squares: FloatArray = _vecdot(diff, diff)
    return squares


def metres_to_chord(distance_m: float) -> float:
    return 2.0 * math.sin(min(distance_m / (2.0 * EARTH_RADIUS_M), math.pi / 2))


def chord_to_metres(chord: FloatArray) -> FloatArray:
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(chord / 2.0, 1.0)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """Approximate bytes held by the index (tree node storage is estimated)."""

    points: int
    tree: int
    lookup: int
    delta: int

    @property
    def total(self) -> int:
        return self.points + self.tree + self.lookup + self.delta


@dataclass(frozen=True, slots=True)
class _Base:
    """An immutable snapshot: the tree and its parallel arrays (``alive`` is the only mutable part)."""

    xyz: FloatArray
    keys: npt.NDArray[np.int32]
    purposes: npt.NDArray[np.int8]
    alive: npt.NDArray[np.bool_]
    tree: cKDTree
    sorted_keys: npt.NDArray[np.int32]
    sorted_pos: npt.NDArray[np.int32]
    grid: CellGrid

    @staticmethod
    def build(xyz: FloatArray, keys: npt.NDArray[np.int32], purposes: npt.NDArray[np.int8]) -> _Base:
        # Points are stored in grid-cell order, so a small-radius query reads a few slices.
        cell_order, grid = CellGrid.order(xyz)
        xyz, keys, purposes = xyz[cell_order], keys[cell_order], purposes[cell_order]
        # Compact, median-split nodes: tighter boxes make each traversal cheaper; builds as fast.
        tree = cKDTree(xyz, leafsize=16, compact_nodes=True, balanced_tree=True, copy_data=False)
        order = np.argsort(keys, kind="stable").astype(np.int32)
        alive = np.ones(keys.size, dtype=np.bool_)
        return _Base(xyz, keys, purposes, alive, tree, keys[order], order, grid)

    def positions(self, keys: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        """Base position of each key, or -1 when absent."""
        if self.sorted_keys.size == 0:
            return np.full(keys.size, -1, dtype=np.int64)
        at = np.searchsorted(self.sorted_keys, keys)
        at_clipped = np.minimum(at, self.sorted_keys.size - 1)
        found = self.sorted_keys[at_clipped] == keys
        return np.where(found, self.sorted_pos[at_clipped], -1).astype(np.int64)


class _Delta:
    """Cameras added or moved since the last build, searched by brute force."""

    def __init__(self) -> None:
        self.row: dict[int, int] = {}
        self.xyz = np.empty((64, 3), dtype=np.float64)
        self.keys = np.empty(64, dtype=np.int32)
        self.purposes = np.empty(64, dtype=np.int8)
        self.size = 0

    def put(self, key: int, xyz: FloatArray, purpose: int) -> None:
        row = self.row.get(key)
        if row is None:
            if self.size == self.keys.size:
                cap = self.size * 2
                self.xyz = np.resize(self.xyz, (cap, 3))
                self.keys = np.resize(self.keys, cap)
                self.purposes = np.resize(self.purposes, cap)
            row = self.size
            self.size += 1
            self.row[key] = row
            self.keys[row] = key
        self.xyz[row] = xyz
        self.purposes[row] = purpose

    def discard(self, key: int) -> bool:
        row = self.row.pop(key, None)
        if row is None:
            return False
        last = self.size - 1
        if row != last:  # move the last row into the hole
            moved = int(self.keys[last])
            self.xyz[row] = self.xyz[last]
            self.keys[row] = moved
            self.purposes[row] = self.purposes[last]
            self.row[moved] = row
        self.size = last
        return True


def _purpose_mask(purposes: Iterable[int] | None) -> npt.NDArray[np.bool_] | None:
    if purposes is None:
        return None
    mask = np.zeros(256, dtype=np.bool_)
    for p in purposes:
        mask[int(p) & 0xFF] = True
    return mask


class CameraIndex:
    """k-nearest and radius search over cameras, with immediate upserts and removals."""

    def __init__(
        self,
        keys: npt.ArrayLike = (),
        lats: npt.ArrayLike = (),
        lons: npt.ArrayLike = (),
        purposes: npt.ArrayLike | None = None,
        *,
        rebuild_threshold: int = 1024,
        background_rebuild: bool = True,
    ) -> None:
        k, xyz, p = self._validate(keys, lats, lons, purposes)
        ordered = np.sort(k)  # a sort and a neighbour compare: np.unique took ≈ 1.5 s at 1.6 M
        if bool((ordered[1:] == ordered[:-1]).any()):
            raise ValueError("duplicate camera keys")
        del ordered
        self._base = _Base.build(xyz, k, p)
        self._delta = _Delta()
        self._dead = 0
        self._lock = threading.RLock()
        self._rebuild_threshold = rebuild_threshold
        self._background = background_rebuild
        self._journal: list[tuple[str, tuple[npt.NDArray[np.generic], ...]]] | None = None
        self._builder: threading.Thread | None = None

    # -- validation --------------------------------------------------------------------------

    @staticmethod
    def _validate(
        keys: npt.ArrayLike, lats: npt.ArrayLike, lons: npt.ArrayLike, purposes: npt.ArrayLike | None
    ) -> tuple[npt.NDArray[np.int32], FloatArray, npt.NDArray[np.int8]]:
        k = np.asarray(keys, dtype=np.int64).reshape(-1)
        lat = np.asarray(lats, dtype=np.float64).reshape(-1)
        lon = np.asarray(lons, dtype=np.float64).reshape(-1)
        p = (
            np.zeros(k.size, dtype=np.int64)
            if purposes is None
            else np.asarray(purposes, np.int64).reshape(-1)
        )
        if not (k.size == lat.size == lon.size == p.size):
            raise ValueError("keys, lats, lons and purposes must have the same length")
        if k.size and (k.min() < 0 or k.max() > _MAX_KEY):
            raise ValueError("camera keys must be within [0, 2**31 - 1]")
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            raise ValueError("coordinates must be finite")
        if (np.abs(lat) > 90).any() or (np.abs(lon) > 180).any():
            raise ValueError("coordinates out of range")
        if p.size and (p.min() < 0 or p.max() > 127):
            raise ValueError("purpose codes must be within [0, 127]")
        return k.astype(np.int32), unit_vectors(lat, lon).reshape(-1, 3), p.astype(np.int8)

    # -- updates -----------------------------------------------------------------------------

    def upsert(
        self,
        keys: npt.ArrayLike,
        lats: npt.ArrayLike,
        lons: npt.ArrayLike,
        purposes: npt.ArrayLike | None = None,
    ) -> None:
        """Add cameras or move/re-purpose existing ones; visible to the next query."""
        k, xyz, p = self._validate(keys, lats, lons, purposes)
        with self._lock:
            if self._journal is not None:
                self._journal.append(("upsert", (k.copy(), xyz.copy(), p.copy())))
            self._apply_upsert(k, xyz, p)
            self._maybe_rebuild()

    def remove(self, keys: npt.ArrayLike) -> int:
        """Remove cameras by key; unknown keys are ignored. Returns how many were removed."""
        wide = np.asarray(keys, dtype=np.int64).reshape(-1)
        k: npt.NDArray[np.int32] = wide[(wide >= 0) & (wide <= _MAX_KEY)].astype(np.int32)
        with self._lock:
            if self._journal is not None:
                self._journal.append(("remove", (k.copy(),)))
            removed = self._apply_remove(k)
            self._maybe_rebuild()
            return removed

    def _tombstone(self, keys: npt.NDArray[np.int32]) -> int:
        base = self._base
        pos = base.positions(keys)
        pos = pos[pos >= 0]
        pos = np.unique(pos[base.alive[pos]])
        base.alive[pos] = False
        self._dead += int(pos.size)
        return int(pos.size)

    def _apply_upsert(self, k: npt.NDArray[np.int32], xyz: FloatArray, p: npt.NDArray[np.int8]) -> None:
        self._tombstone(k)
        for i, key in enumerate(k.tolist()):
            self._delta.put(key, xyz[i], int(p[i]))

    def _apply_remove(self, k: npt.NDArray[np.int32]) -> int:
        removed = self._tombstone(k)
        for key in k.tolist():
            removed += self._delta.discard(key)
        return removed

    # -- rebuilds ----------------------------------------------------------------------------

    def _needs_rebuild(self) -> bool:
        return self._delta.size >= self._rebuild_threshold or self._dead > max(
            self._rebuild_threshold, self._base.keys.size // 20
        )

    def _maybe_rebuild(self) -> None:
        if self._builder is not None or not self._needs_rebuild():
            return
        if self._background:
            self._start_background_rebuild()
        else:
            self.rebuild()

    def _snapshot(self) -> tuple[FloatArray, npt.NDArray[np.int32], npt.NDArray[np.int8]]:
        base, delta = self._base, self._delta
        alive = base.alive
        return (
            np.concatenate([base.xyz[alive], delta.xyz[: delta.size]]),
            np.concatenate([base.keys[alive], delta.keys[: delta.size]]),
            np.concatenate([base.purposes[alive], delta.purposes[: delta.size]]),
        )

    def _install(self, base: _Base) -> None:
        self._base = base
        self._delta = _Delta()
        self._dead = 0

    def rebuild(self) -> None:
        """Fold the delta and tombstones into a new tree now (waits for a background build)."""
        self.wait_for_rebuild()
        with self._lock:
            self._install(_Base.build(*self._snapshot()))

    def _start_background_rebuild(self) -> None:
        snapshot = self._snapshot()
        self._journal = []

        def build() -> None:
            base = _Base.build(*snapshot)
            with self._lock:
                journal, self._journal = self._journal or [], None
                self._install(base)
                for op, args in journal:  # changes made while the tree was being built
                    if op == "upsert":
                        self._apply_upsert(args[0], args[1], args[2])  # type: ignore[arg-type]
                    else:
                        self._apply_remove(args[0])  # type: ignore[arg-type]
                self._builder = None

        self._builder = threading.Thread(target=build, name="camera-index-rebuild", daemon=True)
        self._builder.start()

    def wait_for_rebuild(self) -> None:
        """Block until a background rebuild, if any, has been installed."""
        builder = self._builder
        if builder is not None:
            builder.join()

    # -- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return int(self._base.keys.size) - self._dead + self._delta.size

    def nearest(
        self,
        lat: float,
        lon: float,
        k: int = 1,
        max_distance_m: float | None = None,
        purposes: Iterable[int] | None = None,
    ) -> list[Hit]:
        """Up to ``k`` cameras nearest to the point, optionally within a radius and by purpose."""
        if k <= 0:
            return []
        q = _unit_vector(lat, lon)
        bound = math.inf if max_distance_m is None else metres_to_chord(max_distance_m) * _CHORD_SLACK
        mask = _purpose_mask(purposes)
        with self._lock:
            base, delta = self._base, self._delta
            if mask is None and self._dead == 0 and delta.size == 0:
                return self._nearest_plain(base, q, k, bound)
            keys_b, chords_b = self._nearest_base(base, q, k, bound, mask)
            keys_d, chords_d = self._delta_hits(delta, q, bound, mask)
        return self._merge(keys_b, chords_b, keys_d, chords_d, k)

    def within(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        limit: int | None = None,
        purposes: Iterable[int] | None = None,
    ) -> list[Hit]:
        """Cameras within ``radius_m`` of the point, nearest first, at most ``limit`` of them."""
        if limit is not None:
            return self.nearest(lat, lon, limit, max_distance_m=radius_m, purposes=purposes)
        if purposes is None:
            hits = self._within_plain(lat, lon, radius_m)
            if hits is not None:
                return hits
        q = _unit_vector(lat, lon)
        bound = metres_to_chord(radius_m) * _CHORD_SLACK
        mask = _purpose_mask(purposes)
        with self._lock:
            base, delta = self._base, self._delta
            idx = np.asarray(base.tree.query_ball_point(q, bound), dtype=np.intp)
            keep = base.alive[idx]
            if mask is not None:
                keep &= mask[base.purposes[idx]]
            idx = idx[keep]
            chords_b = np.sqrt(_squared_chords(base.xyz[idx] - q))
            inside = chords_b <= bound
            keys_d, chords_d = self._delta_hits(delta, q, bound, mask)
            keys_b = base.keys[idx][inside]
        return self._merge(keys_b, chords_b[inside], keys_d, chords_d, None)

    # Fast paths for the common case — no pending update, no tombstone, no purpose filter — where
    # the tree alone answers: its k-nearest answer is already in chord order, so what is left is
    # ordering exact ties by key and converting a few chords to metres.

    @staticmethod
    def _plain_hits(keys: list[int], chords: list[float]) -> list[Hit]:
        pairs = list(zip(chords, keys, strict=True))
        if any(pairs[i][0] == pairs[i + 1][0] for i in range(len(pairs) - 1)):
            pairs.sort()  # equal distances in key order, as the general path
        two_r, asin = 2.0 * EARTH_RADIUS_M, math.asin
        return [(key, two_r * asin(min(chord / 2.0, 1.0))) for chord, key in pairs]

    def _nearest_plain(self, base: _Base, q: FloatArray, k: int, bound: float) -> list[Hit]:
        n = int(base.keys.size)
        if n == 0:
            return []
        # One more than asked, so that a tie at the cut is ordered by key like the general path.
        want = min(n, k + 1)
        chords, idx = base.tree.query(q, k=want, distance_upper_bound=bound)
        if want == 1:
            chords, idx = np.atleast_1d(chords), np.atleast_1d(idx)
        found = int(np.searchsorted(chords, math.inf))  # misses (chord inf) sort last
        hits = self._plain_hits(base.keys[idx[:found]].tolist(), chords[:found].tolist())
        return hits[:k]

    def _within_plain(self, lat: float, lon: float, radius_m: float) -> list[Hit] | None:
        """The radius query when the tree alone answers (None when it does not). The grid cells
        around the point are a few slices of the base arrays: measuring the hundred or so points
        in them costs less than a tree traversal plus gathering its hits. What is left is the
        cost of the NumPy calls (≈ 0.5–1 µs each, whatever their size) and of the Python around
        them, so the work is in this function and ``_ordered_hits``: the slices are joined once,
        only the hits are taken out, and only they are sorted and converted."""
        q = _unit_vector(lat, lon)
        bound = metres_to_chord(radius_m) * _CHORD_SLACK
        with self._lock:
            base = self._base
            if self._dead or self._delta.size:
                return None
            near = base.grid.near(lat, lon, 2.0 * math.asin(min(bound / 2.0, 1.0)), base.xyz, base.keys)
            if near is None:
                return self._within_ball(base, q, bound)
        xyz, keys = near
        diff = xyz - q
        squares = _vecdot(diff, diff)  # as _squared_chords
        inside = squares <= bound * bound
        squares = squares.compress(inside)
        if not squares.size:
            return []
        return self._ordered_hits(keys.compress(inside), _sqrt(squares))

    def _within_ball(self, base: _Base, q: FloatArray, bound: float) -> list[Hit]:
        idx = base.tree.query_ball_point(q, bound, return_sorted=False)
        if not idx:
            return []
        rows = np.asarray(idx, dtype=np.intp)
        chords = np.sqrt(_squared_chords(base.xyz.take(rows, axis=0) - q))
        return self._ordered_hits(base.keys.take(rows), chords, antipodal=bound > 2.0)

    @staticmethod
    def _ordered_hits(keys: npt.NDArray[np.int32], chords: FloatArray, antipodal: bool = False) -> list[Hit]:
        """Hits nearest first, equal chords in key order, as (key, great-circle metres).
        ``antipodal``: chords may pass 2 by rounding (a bound beyond the antipode)."""
        order = chords.argsort()
        ordered = chords.take(order)
        if _count_nonzero(ordered[1:] == ordered[:-1]):  # a tie: order it by key
            order = _lexsort((keys, chords))
            ordered = chords.take(order)
        half = ordered * 0.5
        if antipodal:
            np.minimum(half, 1.0, out=half)
        metres = _arcsin(half, out=half)
        metres *= _TWO_R
        return [*zip(keys.take(order).tolist(), metres.tolist(), strict=False)]

    def _nearest_base(
        self, base: _Base, q: FloatArray, k: int, bound: float, mask: npt.NDArray[np.bool_] | None
    ) -> tuple[npt.NDArray[np.int32], FloatArray]:
        n = int(base.keys.size)
        if n == 0:
            return np.empty(0, np.int32), np.empty(0)
        # Over-fetch for tombstones and the purpose filter; widen until k pass or the tree is exhausted.
        share = 1.0 - self._dead / n
        if mask is not None:
            share *= max(float(mask[base.purposes[: min(n, 4096)]].mean()), 1e-3)
        want = min(n, int(k / max(share, 1e-3) * 1.2) + 4)
        while True:
            chords, idx = base.tree.query(q, k=want, distance_upper_bound=bound)
            chords, idx = np.atleast_1d(chords), np.atleast_1d(idx)
            found = idx < n
            idx, chords = idx[found], chords[found]
            keep = base.alive[idx]
            if mask is not None:
                keep &= mask[base.purposes[idx]]
            if int(keep.sum()) >= k or idx.size < want or want >= n:
                return base.keys[idx[keep]][:k], chords[keep][:k]
            want = min(n, want * 4)

    @staticmethod
    def _delta_hits(
        delta: _Delta, q: FloatArray, bound: float, mask: npt.NDArray[np.bool_] | None
    ) -> tuple[npt.NDArray[np.int32], FloatArray]:
        if delta.size == 0:
            return np.empty(0, np.int32), np.empty(0)
        chords = np.sqrt(_squared_chords(delta.xyz[: delta.size] - q))
        keep = chords <= bound
        if mask is not None:
            keep &= mask[delta.purposes[: delta.size]]
        return delta.keys[: delta.size][keep].copy(), chords[keep]

    @staticmethod
    def _merge(
        keys_a: npt.NDArray[np.int32],
        chords_a: FloatArray,
        keys_b: npt.NDArray[np.int32],
        chords_b: FloatArray,
        limit: int | None,
    ) -> list[Hit]:
        keys = np.concatenate([keys_a, keys_b])
        chords = np.concatenate([chords_a, chords_b])
        order = np.lexsort((keys, chords))
        if limit is not None:
            order = order[:limit]
        metres = chord_to_metres(chords[order])
        return list(zip(keys[order].tolist(), metres.tolist(), strict=True))

    # -- introspection -----------------------------------------------------------------------

    def memory(self) -> MemoryReport:
        """Approximate memory use in bytes."""
        with self._lock:
            base, delta = self._base, self._delta
            points = base.xyz.nbytes + base.keys.nbytes + base.purposes.nbytes + base.alive.nbytes
            # cKDTree: an index permutation plus roughly 64 bytes per node (estimate).
            tree = int(base.tree.indices.nbytes) + int(base.tree.size) * 64
            lookup = base.sorted_keys.nbytes + base.sorted_pos.nbytes + base.grid.nbytes
            delta_bytes = delta.xyz.nbytes + delta.keys.nbytes + delta.purposes.nbytes + len(delta.row) * 100
            return MemoryReport(int(points), tree, int(lookup), int(delta_bytes))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "tree_points": int(self._base.keys.size),
                "tombstones": self._dead,
                "delta": self._delta.size,
                "rebuilding": int(self._builder is not None),
            }
