"""The demo center's CCTV inventory: realistic, synthetic, fast to seed (well under 2 s).

* ~2,000 synthetic sites (``cameras.synthetic``) in 종로구 (the largest share) and its neighbours
  중구, 용산구, 서대문구, 마포구, 은평구, 성북구 and 동대문구;
* a dense cluster of ``TEST_SITE_CAMERAS`` sites within 600 m of the conformance test location
  (37.5729, 126.9794, 세종로 — ``conformance.demo``'s ``camera_location``);
* the two example rows of spec §12.2 / §12.9 (관리번호 202630000000800463 and 202630000000800471).

Seeding upserts by 관리번호, so restarting the demo center keeps every camera's name.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime

import numpy as np

from reference_server.cameras.records import CameraRecord
from reference_server.cameras.synthetic import synthetic_cameras
from reference_server.clock import Clock
from reference_server.domain.cameras import repository
from reference_server.domain.cameras.convert import to_camera
from reference_server.geo.codes import AdminAgencyCode
from reference_server.geo.municipalities import load_municipalities
from reference_server.store.sqlite import SqliteStore

SYNTHETIC_SITES = 2000
TEST_SITE = (37.5729, 126.9794)
TEST_SITE_CAMERAS = 40
NEIGHBOURS = {
    "11010": 4.0,
    "11020": 1.5,
    "11030": 1.0,
    "11130": 1.0,
    "11140": 1.0,
    "11120": 0.8,
    "11080": 1.0,
    "11060": 0.8,
}
JONGNO = AdminAgencyCode("3000000")


def example_rows() -> list[CameraRecord]:
    """The spec's example rows (종로구청, 북촌로)."""
    common = {
        "managing_agency": "서울특별시 종로구청",
        "camera_count": 2,
        "pixels_10k": 200,
        "direction": "360도 전방면",
        "retention_days": 30,
        "installed_year_month": (2020, 5),
        "phone": "02-2148-3033",
        "data_date": date(2026, 5, 18),
        "local_gov_code": JONGNO,
        "updated_at": datetime(2026, 5, 19, 22, 58, 23),
        "last_modified_at": datetime(2026, 5, 18, 15, 24, 18),
    }
    return [
        CameraRecord(
            management_number="202630000000800463",
            road_address="서울특별시 종로구 북촌로 134-1",
            lot_address=None,
            purpose="생활방범",
            latitude=37.58785,
            longitude=126.9843,
            **common,  # type: ignore[arg-type]
        ),
        CameraRecord(
            management_number="202630000000800471",
            road_address="서울특별시 종로구 북촌로5길 20",
            lot_address=None,
            purpose="어린이보호",
            latitude=37.5787,
            longitude=126.9857,
            **common,  # type: ignore[arg-type]
        ),
    ]


def test_site_rows() -> Iterator[CameraRecord]:
    """A deterministic cluster around the conformance test location."""
    rng = np.random.default_rng(20260519)
    purposes = (
        "생활방범",
        "생활방범",
        "어린이보호",
        "교통단속",
        "시설안전",
        "주정차단속",
        "재난재해",
        "기타",
    )
    lat0, lon0 = TEST_SITE
    for n in range(1, TEST_SITE_CAMERAS + 1):
        distance = 30.0 + 570.0 * math.sqrt(float(rng.random()))
        bearing = float(rng.random()) * 2 * math.pi
        lat = lat0 + distance * math.cos(bearing) / 111_320.0
        lon = lon0 + distance * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat0)))
        yield CameraRecord(
            management_number=f"2026300000009{n:05d}",
            managing_agency="서울특별시 종로구청",
            road_address=f"서울특별시 종로구 세종대로 {150 + n}",
            lot_address=f"서울특별시 종로구 세종로 {80 + n}",
            purpose=purposes[n % len(purposes)],
            camera_count=1 + n % 3,
            pixels_10k=(200, 400, 800)[n % 3],
            direction="360도 전방면",
            retention_days=30,
            installed_year_month=(2018 + n % 7, 1 + n % 12),
            phone="02-2148-3033",
            latitude=round(lat, 6),
            longitude=round(lon, 6),
            data_date=date(2026, 5, 18),
            local_gov_code=JONGNO,
            updated_at=datetime(2026, 5, 19, 22, 58, 23),
            last_modified_at=datetime(2026, 5, 18, 15, 24, 18),
        )


def demo_rows() -> Iterator[CameraRecord]:
    areas = [m for m in load_municipalities() if m.statistics_code.value in NEIGHBOURS]
    weights = [NEIGHBOURS[m.statistics_code.value] for m in areas]
    yield from example_rows()
    yield from test_site_rows()
    yield from synthetic_cameras(SYNTHETIC_SITES, seed=20260519, municipalities=areas, weights=weights)


async def seed_demo_inventory(store: SqliteStore, clock: Clock) -> int:
    """Upsert the demo inventory; returns the number of cameras."""
    cameras = [to_camera(r) for r in demo_rows()]

    async with store.transaction() as tx:

        def write(conn: sqlite3.Connection) -> int:
            seq = repository.next_change_seq(conn)
            for camera in cameras:
                repository.upsert(conn, camera, tx.now, seq)
            return len(cameras)

        return await tx.run(write)
