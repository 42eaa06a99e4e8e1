"""CameraIndex against brute-force haversine, including after updates and rebuilds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from reference_server.cameras.spatial_index import EARTH_RADIUS_M, CameraIndex

N = 20_000


def _haversine(
    lat: float, lon: float, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    p1, p2 = np.radians(lat), np.radians(lats)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a)))


class Reference:
    """Brute-force model of the index: key -> (lat, lon, purpose)."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[float, float, int]] = {}

    def arrays(
        self,
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]
    ]:
        keys = np.array(sorted(self.rows), dtype=np.int64)
        vals = np.array([self.rows[int(k)] for k in keys]).reshape(-1, 3)
        return keys, vals[:, 0], vals[:, 1], vals[:, 2].astype(np.int64)

    def query(self, lat: float, lon: float, purposes: set[int] | None) -> list[tuple[int, float]]:
        keys, lats, lons, purp = self.arrays()
        d = _haversine(lat, lon, lats, lons)
        keep = np.ones(keys.size, dtype=bool) if purposes is None else np.isin(purp, list(purposes))
        order = np.lexsort((keys[keep], d[keep]))
        return list(zip(keys[keep][order].tolist(), d[keep][order].tolist(), strict=True))


def _random(
    rng: np.random.Generator, n: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    # Seoul-sized box so that neighbourhoods are dense, plus purposes 0..6
    return rng.uniform(37.4, 37.7, n), rng.uniform(126.8, 127.2, n), rng.integers(0, 7, n)


@pytest.fixture()
def data() -> tuple[CameraIndex, Reference, np.random.Generator]:
    rng = np.random.default_rng(42)
    lats, lons, purp = _random(rng, N)
    keys = rng.permutation(10 * N)[:N]  # sparse, unordered keys
    ref = Reference()
    ref.rows = {
        int(k): (float(a), float(o), int(p)) for k, a, o, p in zip(keys, lats, lons, purp, strict=True)
    }
    return CameraIndex(keys, lats, lons, purp, background_rebuild=False), ref, rng


def _check(index: CameraIndex, ref: Reference, rng: np.random.Generator, queries: int = 40) -> None:
    for _ in range(queries):
        lat, lon = float(rng.uniform(37.35, 37.75)), float(rng.uniform(126.75, 127.25))
        purposes = None if rng.random() < 0.5 else {int(rng.integers(0, 7))}
        expected = ref.query(lat, lon, purposes)
        k = int(rng.integers(1, 30))
        got = index.nearest(lat, lon, k, purposes=purposes)
        assert [key for key, _ in got] == [key for key, _ in expected[:k]]
        assert np.allclose([d for _, d in got], [d for _, d in expected[:k]], rtol=1e-9, atol=1e-6)
        radius = float(rng.uniform(50, 800))
        within = index.within(lat, lon, radius, purposes=purposes)
        inside = [e for e in expected if e[1] <= radius]
        assert [key for key, _ in within] == [key for key, _ in inside]
        limited = index.within(lat, lon, radius, limit=5, purposes=purposes)
        assert [key for key, _ in limited] == [key for key, _ in inside[:5]]
        capped = index.nearest(lat, lon, 50, max_distance_m=radius, purposes=purposes)
        assert [key for key, _ in capped] == [key for key, _ in inside[:50]]


def test_matches_brute_force(data: tuple[CameraIndex, Reference, np.random.Generator]) -> None:
    index, ref, rng = data
    assert len(index) == N
    _check(index, ref, rng)


def test_updates_are_visible_immediately(data: tuple[CameraIndex, Reference, np.random.Generator]) -> None:
    index, ref, rng = data
    keys = list(ref.rows)
    moved = rng.choice(keys, 300, replace=False)
    lats, lons, purp = _random(rng, moved.size)
    index.upsert(moved, lats, lons, purp)
    new_keys = np.arange(10 * N, 10 * N + 200)
    nlats, nlons, npurp = _random(rng, new_keys.size)
    index.upsert(new_keys, nlats, nlons, npurp)
    gone = rng.choice(keys, 500, replace=False)
    removed = index.remove(
        np.concatenate([gone, [10 * N + 5, 999_999_999]])
    )  # incl. a delta key, unknown key
    for k, a, o, p in zip(moved, lats, lons, purp, strict=True):
        ref.rows[int(k)] = (float(a), float(o), int(p))
    for k, a, o, p in zip(new_keys, nlats, nlons, npurp, strict=True):
        ref.rows[int(k)] = (float(a), float(o), int(p))
    for k in [*gone.tolist(), 10 * N + 5]:
        removed -= int(ref.rows.pop(int(k), None) is not None)
    assert removed == 0
    assert index.stats()["delta"] > 0 and index.stats()["tombstones"] > 0
    assert len(index) == len(ref.rows)
    _check(index, ref, rng)
    index.rebuild()
    assert index.stats() == {"tree_points": len(ref.rows), "tombstones": 0, "delta": 0, "rebuilding": 0}
    _check(index, ref, rng)


def test_background_rebuild_replays_concurrent_updates() -> None:
    rng = np.random.default_rng(7)
    lats, lons, purp = _random(rng, N)
    index = CameraIndex(np.arange(N), lats, lons, purp, rebuild_threshold=100, background_rebuild=True)
    ref = Reference()
    ref.rows = {
        i: (float(a), float(o), int(p)) for i, (a, o, p) in enumerate(zip(lats, lons, purp, strict=True))
    }
    for batch in range(10):  # crosses the threshold several times, some updates land mid-build
        keys = rng.integers(0, N + 500, 60)
        a, o, p = _random(rng, keys.size)
        index.upsert(keys, a, o, p)
        for k, x, y, z in zip(keys, a, o, p, strict=True):
            ref.rows[int(k)] = (float(x), float(y), int(z))
        drop = rng.integers(0, N + 500, 20)
        index.remove(drop)
        for k in drop:
            ref.rows.pop(int(k), None)
        if batch % 3 == 0:
            _check(index, ref, rng, queries=5)
    index.wait_for_rebuild()
    assert len(index) == len(ref.rows)
    _check(index, ref, rng)


def test_purpose_filter_widens_until_satisfied() -> None:
    rng = np.random.default_rng(1)
    lats, lons, _ = _random(rng, N)
    purp = np.zeros(N, dtype=np.int64)
    purp[rng.choice(N, 12, replace=False)] = 6  # rare purpose
    index = CameraIndex(np.arange(N), lats, lons, purp)
    hits = index.nearest(37.55, 127.0, 10, purposes=[6])
    assert len(hits) == 10 and all(purp[k] == 6 for k, _ in hits)
    assert len(index.nearest(37.55, 127.0, 50, purposes=[6])) == 12
    assert index.nearest(37.55, 127.0, 5, purposes=[5]) == []


def test_edge_cases_and_validation() -> None:
    empty = CameraIndex()
    assert empty.nearest(37.5, 127.0, 5) == [] and empty.within(37.5, 127.0, 1000) == []
    index = CameraIndex([7], [37.5], [127.0])
    assert index.nearest(37.5, 127.0, 0) == []
    ((key, dist),) = index.nearest(37.5, 127.001, 3)
    assert key == 7 and dist == pytest.approx(88.2, abs=0.5)  # 0.001° of longitude at 37.5°N
    assert index.within(37.5, 127.001, 88.0) == [] and len(index.within(37.5, 127.001, 89.0)) == 1
    with pytest.raises(ValueError):
        CameraIndex([1, 1], [37.0, 37.1], [127.0, 127.1])
    with pytest.raises(ValueError):
        CameraIndex([-1], [37.0], [127.0])
    with pytest.raises(ValueError):
        index.upsert([1], [float("nan")], [127.0])
    with pytest.raises(ValueError):
        index.nearest(95.0, 127.0, 1)
    report = index.memory()
    assert report.total >= report.points > 0


def _same_answer(fast: list[tuple[int, float]], general: list[tuple[int, float]]) -> None:
    """The same distances, in (distance, key) order; keys may differ only within a tie at the cut
    (the general path cuts in tree order, the fast path by key)."""
    assert [d for _, d in fast] == [d for _, d in general]
    assert fast == sorted(fast, key=lambda h: (h[1], h[0]))
    if fast:
        cut = fast[-1][1]
        assert {k for k, d in fast if d < cut} == {k for k, d in general if d < cut}


def test_the_fast_path_answers_as_the_general_path() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    lats = rng.uniform(37.4, 37.7, n)
    lons = rng.uniform(126.8, 127.1, n)
    lats[:200], lons[:200] = lats[200:400], lons[200:400]  # exact ties
    index = CameraIndex(np.arange(n), lats, lons, np.ones(n, dtype=np.int8), background_rebuild=False)
    every = list(range(128))  # a purpose filter that keeps everything forces the general path
    for i in range(300):
        lat, lon = float(lats[i]) + 1e-4 * (i % 3), float(lons[i])
        for k in (1, 10, 37):
            _same_answer(index.nearest(lat, lon, k), index.nearest(lat, lon, k, purposes=every))
            _same_answer(
                index.nearest(lat, lon, k, max_distance_m=150),
                index.nearest(lat, lon, k, max_distance_m=150, purposes=every),
            )
        _same_hits(index.within(lat, lon, 300), index.within(lat, lon, 300, purposes=every))
    _same_hits(index.within(37.55, 126.95, 5_000), index.within(37.55, 126.95, 5_000, purposes=every))


def _same_hits(fast: list[tuple[int, float]], general: list[tuple[int, float]]) -> None:
    """Same keys in the same order; distances to the last bits (the tree and the general path
    compute chords in different orders)."""
    assert [k for k, _ in fast] == [k for k, _ in general]
    assert [d for _, d in fast] == pytest.approx([d for _, d in general], rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    ("lat0", "lon0"),
    [
        (37.5, 127.0),  # Seoul: the grid answers
        (33.0, 179.99),  # balls crossing the antimeridian: the tree answers
        (89.93, 30.0),  # balls around the pole: the tree answers
        (-45.0, -120.0),  # southern and western hemispheres
    ],
)
def test_radius_queries_match_brute_force_across_the_grid(lat0: float, lon0: float) -> None:
    """CAM-012/CAM-013/CAM-014 at the index: every radius path (grid cells, tree ball) returns
    exactly the cameras within the radius, nearest first, equal distances by key."""
    rng = np.random.default_rng(int(abs(lat0 * 1000 + lon0)))
    n = 6_000
    lats = np.clip(lat0 + rng.normal(0, 0.01, n), -90, 90)
    lons = lon0 + rng.normal(0, 0.01, n)
    lons = (lons + 180.0) % 360.0 - 180.0
    # cameras exactly on grid-cell borders (0.003° / 0.004°) and co-located cameras (exact ties)
    lats[:300] = np.round(lats[:300] / 0.003) * 0.003
    lons[300:600] = np.clip(np.round(lons[300:600] / 0.004) * 0.004, -180, 180)
    lats[600:900], lons[600:900] = lats[900:1200], lons[900:1200]
    keys = rng.permutation(10 * n)[:n]
    ref = Reference()
    ref.rows = {int(k): (float(a), float(o), 0) for k, a, o in zip(keys, lats, lons, strict=True)}
    index = CameraIndex(keys, lats, lons, background_rebuild=False)
    for i in range(150):
        at = int(rng.integers(0, n))
        lat = float(np.clip(lats[at] + rng.normal(0, 0.001), -90, 90))
        lon = float(lons[at] + rng.normal(0, 0.001))
        lon = (lon + 180.0) % 360.0 - 180.0
        radius = float([1.0, 120.0, 300.0, 450.0, 2_500.0][i % 5])
        expected = [e for e in ref.query(lat, lon, None) if e[1] <= radius]
        got = index.within(lat, lon, radius)
        assert [key for key, _ in got] == [key for key, _ in expected]
        assert [d for _, d in got] == pytest.approx([d for _, d in expected], rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("n", [5, 12, 200])
def test_radius_query_lists_each_camera_once_when_grid_rows_are_sparse(n: int) -> None:
    """CAM-012 at the index: with few cameras per grid row the slices read for neighbouring rows
    meet; each camera within the radius is still listed exactly once, nearest first."""
    rng = np.random.default_rng(n)
    lats = 37.5 + rng.uniform(-0.0026, 0.0026, n)  # ≈ ±290 m: three grid rows (0.003°)
    lons = 127.0 + rng.uniform(-0.003, 0.003, n)
    keys = rng.permutation(10 * n)[:n]
    ref = Reference()
    ref.rows = {int(k): (float(a), float(o), 0) for k, a, o in zip(keys, lats, lons, strict=True)}
    index = CameraIndex(keys, lats, lons, background_rebuild=False)
    for lat, lon in [(37.5, 127.0), (37.5015, 126.999), (37.4985, 127.0012)]:
        for radius in (100.0, 300.0, 450.0):
            expected = [e for e in ref.query(lat, lon, None) if e[1] <= radius]
            got = index.within(lat, lon, radius)
            assert [key for key, _ in got] == [key for key, _ in expected]
            assert [d for _, d in got] == pytest.approx([d for _, d in expected], rel=1e-9, abs=1e-6)
