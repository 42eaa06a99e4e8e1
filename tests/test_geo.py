"""Service areas: bundled boundaries, area lookup with uncertainty, seeded sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box
from shapely.ops import nearest_points

from reference_server.geo.codes import AdminAgencyCode, LegalDongCode, StatisticsAreaCode
from reference_server.geo.derive import derive
from reference_server.geo.municipalities import DEFAULT_BOUNDARIES, Municipality, load_municipalities
from reference_server.geo.sampling import clustered_points, random_points_in
from reference_server.geo.service_areas import ServiceAreaIndex, municipality_index

SHARED_SOURCE = (
    Path(__file__).resolve().parents[2] / "shared/data/kr-municipalities-2018/municipalities-2018.geojson"
)


@pytest.fixture(scope="module")
def municipalities() -> list[Municipality]:
    return load_municipalities()


@pytest.fixture(scope="module")
def index() -> ServiceAreaIndex:
    return municipality_index()


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def test_bundled_file_is_small_plain_and_complete(municipalities: list[Municipality]) -> None:
    assert DEFAULT_BOUNDARIES.stat().st_size < 2_000_000
    assert DEFAULT_BOUNDARIES.read_bytes()[:1] == b"{"  # plain JSON, not gzip
    assert len(municipalities) == 250
    assert len({m.statistics_code for m in municipalities}) == 250
    assert all(m.geometry.is_valid for m in municipalities)
    jongno = next(m for m in municipalities if m.area_id == "11010")
    assert (jongno.name, jongno.name_eng, jongno.base_year) == ("종로구", "Jongno-gu", 2018)
    assert jongno.legal_dong_code is None and jongno.admin_agency_code is None
    notice = (DEFAULT_BOUNDARIES.parent / "NOTICE.md").read_text(encoding="utf-8")
    assert "출처: 통계청 통계지리정보서비스" in notice


@pytest.mark.skipif(not SHARED_SOURCE.exists(), reason="shared source dataset not available")
def test_derive_reproduces_bundled_file(tmp_path: Path) -> None:
    out = tmp_path / "m.geojson"
    assert derive(SHARED_SOURCE, out) == 250
    assert out.read_bytes() == DEFAULT_BOUNDARIES.read_bytes()


def test_code_systems_are_distinct_types() -> None:
    assert StatisticsAreaCode("11010").province == "11"
    assert LegalDongCode("1111000000").municipality_prefix == "11110"
    assert str(AdminAgencyCode("3000000")) == "3000000"
    assert StatisticsAreaCode("11010") != LegalDongCode("1111000000")  # type: ignore[comparison-overlap]
    for bad in ("1101", "110100", "1101a", "１１０１０"):
        with pytest.raises(ValueError):
            StatisticsAreaCode(bad)


@pytest.mark.parametrize(
    ("lat", "lon", "code", "name"),
    [
        (37.5729, 126.9794, "11010", "종로구"),
        (37.3867, 126.9322, "31041", "안양시만안구"),
        (35.1631, 129.1635, "21090", "해운대구"),
        (33.4996, 126.5312, "39010", "제주시"),
    ],
)
def test_checked_points(
    index: ServiceAreaIndex, municipalities: list[Municipality], lat: float, lon: float, code: str, name: str
) -> None:
    result = index.locate(lat, lon)
    assert [c.area_id for c in result] == [code]
    assert result[0].contains and result[0].distance_m == 0.0 and result[0].overlap_fraction == 1.0
    assert next(m.name for m in municipalities if m.area_id == code) == name
    nearest = index.nearest_area(lat, lon)
    assert nearest is not None and nearest.area_id == code and nearest.contains


def test_at_sea_is_empty_but_has_a_default_route(index: ServiceAreaIndex) -> None:
    assert index.locate(36.0, 124.9) == []
    assert index.locate(36.0, 124.9, 5_000) == []
    default = index.nearest_area(36.0, 124.9)
    assert default is not None and not default.contains
    assert 10_000 < default.distance_m < 200_000
    # the default really is the nearest border: no area within a slightly smaller radius
    assert index.locate(36.0, 124.9, default.distance_m * 0.999) == []
    assert [c.area_id for c in index.locate(36.0, 124.9, default.distance_m * 1.001)] == [default.area_id]


def test_border_point_returns_both_areas_ranked(index: ServiceAreaIndex) -> None:
    # ~100 m north of the 종로구 / 중구 border (along 청계천)
    lat, lon = 37.5693, 126.9850
    result = index.locate(lat, lon, 500)
    assert [c.area_id for c in result] == ["11010", "11020"]
    inside, other = result
    assert inside.contains and inside.distance_m == 0.0
    assert not other.contains and 60 < other.distance_m < 140
    assert inside.overlap_fraction > other.overlap_fraction > 0.2
    assert inside.overlap_fraction + other.overlap_fraction == pytest.approx(1.0, abs=0.02)
    # a tight uncertainty keeps only the containing area
    assert [c.area_id for c in index.locate(lat, lon, 50)] == ["11010"]
    # just across the border the ranking flips
    assert [c.area_id for c in index.locate(37.5675, 126.9850, 500)][:2] == ["11020", "11010"]


def test_border_distance_agrees_with_haversine(index: ServiceAreaIndex) -> None:
    lat, lon = 37.5693, 126.9850
    other = index.locate(lat, lon, 500)[1]
    _, on_border = nearest_points(Point(lon, lat), index.geometry("11020").boundary)
    assert other.distance_m == pytest.approx(_haversine_m(lat, lon, on_border.y, on_border.x), rel=0.02)


def test_overlap_fraction_on_synthetic_square() -> None:
    # two unit-degree squares sharing the meridian 127°E; a point on it is split half and half
    idx = ServiceAreaIndex([("W", box(126.0, 37.0, 127.0, 38.0)), ("E", box(127.0, 37.0, 128.0, 38.0))])
    result = idx.locate(37.5, 127.0, 1_000)
    assert {c.area_id for c in result} == {"W", "E"}
    assert all(c.contains and c.overlap_fraction == pytest.approx(0.5, abs=0.03) for c in result)
    east = idx.locate(37.5, 127.0 + 500 / (111_320 * math.cos(math.radians(37.5))), 1_000)
    assert [c.area_id for c in east] == ["E", "W"]
    assert east[1].distance_m == pytest.approx(500, rel=0.01)


def test_rejects_bad_input(index: ServiceAreaIndex) -> None:
    for args in ((math.nan, 127.0, 0.0), (37.0, 200.0, 0.0), (37.0, 127.0, -1.0), (37.0, 127.0, math.inf)):
        with pytest.raises(ValueError):
            index.locate(*args)
    with pytest.raises(ValueError):
        ServiceAreaIndex([("a", box(0, 0, 1, 1)), ("a", box(1, 1, 2, 2))])


def test_random_points_inside_and_seeded(municipalities: list[Municipality]) -> None:
    geom = municipalities[0].geometry
    lons, lats = random_points_in(geom, 1_000, seed=7)
    assert lons.shape == lats.shape == (1_000,)
    assert shapely.contains_xy(geom, lons, lats).all()
    again = random_points_in(geom, 1_000, seed=7)
    assert np.array_equal(lons, again[0]) and np.array_equal(lats, again[1])
    assert not np.array_equal(lons, random_points_in(geom, 1_000, seed=8)[0])


def test_clustered_points(municipalities: list[Municipality]) -> None:
    geoms = [m.geometry for m in municipalities]
    weights = np.ones(len(geoms))
    weights[0] = 10.0
    pts = clustered_points(geoms, weights, 50_000, seed=3)
    counts = np.bincount(pts.area_index, minlength=len(geoms))
    assert counts.sum() == 50_000
    assert counts[0] > 5 * np.median(counts)
    for a in (0, 100, 249):
        sel = pts.area_index == a
        assert shapely.contains_xy(geoms[a], pts.lons[sel], pts.lats[sel]).all()
    again = clustered_points(geoms, weights, 50_000, seed=3)
    assert np.array_equal(pts.lons, again.lons) and np.array_equal(pts.area_index, again.area_index)


def test_clustered_points_at_national_size(municipalities: list[Municipality]) -> None:
    # How fast it is belongs to bench/ (cameras); here only that the national size is produced.
    geoms = [m.geometry for m in municipalities]
    pts = clustered_points(geoms, np.ones(len(geoms)), 1_600_000, seed=1)
    assert pts.lons.size == 1_600_000
