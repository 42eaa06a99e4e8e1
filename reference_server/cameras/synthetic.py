"""Synthetic camera inventories in the national CCTV format, inside real municipal areas.

Deterministic by seed. Values follow the published shape of the dataset (purposes with
생활방범 about half, 1–4 cameras per site, 200/400/800 ten-thousand-pixel cameras, 30-day
retention mostly), but names, addresses, phone numbers and codes are invented:

* 개방자치단체코드 is ``9`` + Statistics Korea code + ``0`` — seven digits like a real 행정기관
  code, but the leading 9 marks it as synthetic (the real code table is not bundled).
* 관리번호 is data year (4) + that code (7) + a per-area sequence (7), 18 digits as published.
* Road and dong names come from a short generic list; about 2 % of road addresses carry a
  ", N층" suffix so that quoting of commas is exercised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from reference_server.cameras.records import CameraRecord
from reference_server.geo.codes import AdminAgencyCode
from reference_server.geo.municipalities import Municipality, load_municipalities
from reference_server.geo.sampling import clustered_points

# SGIS 시도 prefix -> (name in 2018, telephone area code)
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("서울특별시", "02"),
    "21": ("부산광역시", "051"),
    "22": ("대구광역시", "053"),
    "23": ("인천광역시", "032"),
    "24": ("광주광역시", "062"),
    "25": ("대전광역시", "042"),
    "26": ("울산광역시", "052"),
    "29": ("세종특별자치시", "044"),
    "31": ("경기도", "031"),
    "32": ("강원도", "033"),
    "33": ("충청북도", "043"),
    "34": ("충청남도", "041"),
    "35": ("전라북도", "063"),
    "36": ("전라남도", "061"),
    "37": ("경상북도", "054"),
    "38": ("경상남도", "055"),
    "39": ("제주특별자치도", "064"),
}
METROPOLITAN = {"11", "21", "22", "23", "24", "25", "26"}

PURPOSES = ("생활방범", "어린이보호", "시설안전", "교통단속", "주정차단속", "재난재해")
PURPOSE_SHARES = (0.50, 0.16, 0.12, 0.09, 0.08, 0.05)
CAMERA_COUNTS = (1, 2, 3, 4)
CAMERA_COUNT_SHARES = (0.55, 0.25, 0.12, 0.08)
PIXELS = (200, 400, 800)
PIXEL_SHARES = (0.55, 0.35, 0.10)
RETENTION = (30, 14, 60, 90)
RETENTION_SHARES = (0.86, 0.04, 0.06, 0.04)
DIRECTIONS = ("360도 전방면", "전방면", "동측", "서측", "남측", "북측", "교차로 방면", "출입구 방면")
ROADS = (
    "중앙로",
    "시장길",
    "학교로",
    "공원로",
    "역전로",
    "문화로",
    "한빛로",
    "새싹길",
    "강변로",
    "산책길",
    "희망로",
    "누리로",
    "푸른길",
    "장터길",
    "버들로",
    "솔밭길",
    "큰길",
    "샘터로",
    "햇살로",
    "미래로",
)
DONGS = (
    "중앙동",
    "신흥동",
    "명륜동",
    "송정동",
    "대화동",
    "월곡동",
    "남산동",
    "신촌동",
    "화정동",
    "동산동",
    "행복동",
    "상리",
    "하리",
    "신리",
    "내동",
)


@dataclass(frozen=True, slots=True)
class AreaProfile:
    """Per-municipality naming used by the generator."""

    agency: str  # 관리기관명
    address_prefix: str  # 시도 + 시군구 as written in addresses
    phone_prefix: str
    local_gov_code: AdminAgencyCode


_GENERAL_DISTRICT = re.compile(r"^(.+시)(.+구)$")


def area_profile(m: Municipality) -> AreaProfile:
    code = m.statistics_code.value
    province, area_code = PROVINCES.get(code[:2], ("", "0" + code[:2]))
    district = _GENERAL_DISTRICT.match(m.name)
    if code[:2] == "29":  # 세종: a single-tier city
        agency, prefix = f"{province}청", province
    elif district:
        city, gu = district.groups()
        agency, prefix = f"{province} {city}청", f"{province} {city} {gu}"
    else:
        agency, prefix = f"{province} {m.name}청", f"{province} {m.name}"
    phone = f"{area_code}-{2100 + int(code) % 800}"
    return AreaProfile(agency, prefix, phone, AdminAgencyCode(f"9{code}0"))


def default_weights(municipalities: Sequence[Municipality]) -> npt.NDArray[np.float64]:
    """Rough camera share per area without population data: denser in metropolitan districts."""
    weights = []
    for m in municipalities:
        code = m.statistics_code.value
        if code[:2] == "11":
            weights.append(2.5)
        elif code[:2] in METROPOLITAN:
            weights.append(1.8)
        elif m.name.endswith("군"):
            weights.append(0.6)
        else:
            weights.append(1.4)
    return np.asarray(weights, dtype=np.float64)


def synthetic_cameras(
    n: int,
    *,
    seed: int = 0,
    municipalities: Sequence[Municipality] | None = None,
    weights: Sequence[float] | npt.NDArray[np.float64] | None = None,
    data_date: date = date(2026, 5, 18),
) -> Iterator[CameraRecord]:
    """Yield ``n`` records spread over the areas (clustered, proportional to ``weights``)."""
    areas = list(municipalities) if municipalities is not None else load_municipalities()
    w = default_weights(areas) if weights is None else np.asarray(weights, dtype=np.float64)
    points = clustered_points([m.geometry for m in areas], w, n, seed=seed)
    profiles = [area_profile(m) for m in areas]
    rng = np.random.default_rng([seed, 0x5CA7])

    def pick(values: Sequence[object], shares: Sequence[float] | None = None) -> list[int]:
        return [int(i) for i in rng.choice(len(values), size=n, p=shares)]

    purpose = pick(PURPOSES, PURPOSE_SHARES)
    cameras = pick(CAMERA_COUNTS, CAMERA_COUNT_SHARES)
    pixels = pick(PIXELS, PIXEL_SHARES)
    retention = pick(RETENTION, RETENTION_SHARES)
    direction = pick(DIRECTIONS)
    road = pick(ROADS)
    dong = pick(DONGS)
    number = rng.integers(1, 400, n).tolist()
    sub_number = np.where(rng.random(n) < 0.4, rng.integers(1, 60, n), 0).tolist()
    address_kind = rng.choice(3, size=n, p=(0.6, 0.25, 0.15)).tolist()  # both / road / lot
    floor = np.where(rng.random(n) < 0.02, rng.integers(1, 6, n), 0).tolist()
    year = (2025 - np.floor(rng.exponential(4.0, n))).clip(2005, 2025).astype(int).tolist()
    month = rng.integers(1, 13, n).tolist()
    # update times: a table of 4096 instants within three days of the data date, picked per row
    base_time = datetime(data_date.year, data_date.month, data_date.day)
    offsets = np.sort(rng.integers(0, 86_400 * 3, 4096)).tolist()
    updated_table = [base_time + timedelta(seconds=s) for s in offsets]
    modified_table = [base_time - timedelta(seconds=s // 3) for s in offsets]
    update_pick = rng.integers(0, 4096, n).tolist()
    lats = np.round(points.lats, 6).tolist()
    lons = np.round(points.lons, 6).tolist()
    area_of = points.area_index.tolist()
    phone_tail = rng.integers(1000, 10_000, len(areas)).tolist()
    sequence = [0] * len(areas)

    for i in range(n):
        a = area_of[i]
        p = profiles[a]
        sequence[a] += 1
        sub = f"-{sub_number[i]}" if sub_number[i] else ""
        road_address = f"{p.address_prefix} {ROADS[road[i]]} {number[i]}{sub}"
        if floor[i]:
            road_address += f", {floor[i]}층"
        lot_address = f"{p.address_prefix} {DONGS[dong[i]]} {number[i] * 3 + 7}{sub}"
        kind = address_kind[i]
        yield CameraRecord(
            management_number=f"{data_date.year}{p.local_gov_code.value}{sequence[a]:07d}",
            managing_agency=p.agency,
            road_address=road_address if kind != 2 else None,
            lot_address=lot_address if kind != 1 else None,
            purpose=PURPOSES[purpose[i]],
            camera_count=CAMERA_COUNTS[cameras[i]],
            pixels_10k=PIXELS[pixels[i]],
            direction=DIRECTIONS[direction[i]],
            retention_days=RETENTION[retention[i]],
            installed_year_month=(year[i], month[i]),
            phone=f"{p.phone_prefix}-{phone_tail[a]}",
            latitude=lats[i],
            longitude=lons[i],
            data_date=data_date,
            local_gov_code=p.local_gov_code,
            update_kind=None,
            updated_at=updated_table[update_pick[i]],
            last_modified_at=modified_table[update_pick[i]],
            line_number=0,
        )
