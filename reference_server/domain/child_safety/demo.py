"""Demo data of the child-safety area (``ansim serve --demo``): a school zone around an elementary
school in 종로구, a home, an academy, a danger zone, their readers (school gate, home, academy, bell
pole, a street reader in the danger zone), two wards with tags and their guardians.

The readers belong to the demo READER_GATEWAY (subject ``readers/demo-reader``) and the first
guardian of both wards is the demo GUARDIAN (``guardians/demo-guardian``), so the demo tokens work
as they are. The school zone's contact ``guardians/demo-teacher`` gets escalated copies."""

from __future__ import annotations

from typing import Any, cast

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2
from google.protobuf import duration_pb2
from google.type import dayofweek_pb2  # type: ignore[import-untyped]

from reference_server.context import ServerContext
from reference_server.domain.child_safety.area import ChildSafetyArea

GATEWAY = "readers/demo-reader"
WEEKDAYS = [
    dayofweek_pb2.MONDAY,
    dayofweek_pb2.TUESDAY,
    dayofweek_pb2.WEDNESDAY,
    dayofweek_pb2.THURSDAY,
    dayofweek_pb2.FRIDAY,
]


def _circle(lat: float, lon: float, radius_m: float) -> common_pb2.Area:
    area = common_pb2.Area()
    area.circles.add(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=radius_m)
    return area


def _square(lat: float, lon: float, half_deg: float) -> common_pb2.Area:
    area = common_pb2.Area()
    ring = area.polygons.add()
    for dlat, dlon in ((-1, -1), (-1, 1), (1, 1), (1, -1)):
        ring.vertices.add(latitude=lat + dlat * half_deg, longitude=lon + dlon * half_deg)
    return area


def _resources(c: str) -> list[tuple[str, str, cs.Ward | cs.Tag | cs.Reader | cs.Zone]]:
    g = f"{c}/guardians"
    z = f"{c}/zones"
    window = cs.LocalTimeWindow(weekdays=WEEKDAYS, start_local_time="08:00", end_local_time="08:50")
    danger_window = cs.LocalTimeWindow(weekdays=WEEKDAYS, start_local_time="14:00", end_local_time="19:00")
    return [
        (
            "zones",
            "jongno-school",
            cs.Zone(
                kind=cs.ZONE_KIND_SCHOOL,
                display_name="종로 안심초등학교",
                area=_circle(37.5747, 126.9870, 120),
                school_contacts=[f"{g}/demo-teacher"],
                closed_dates=["2026-03-01", "2026-05-05"],
            ),
        ),
        (
            "zones",
            "home-minjun",
            cs.Zone(kind=cs.ZONE_KIND_HOME, display_name="민준이 집", area=_circle(37.5771, 126.9903, 25)),
        ),
        (
            "zones",
            "academy-piano",
            cs.Zone(
                kind=cs.ZONE_KIND_ACADEMY, display_name="새싹 피아노학원", area=_circle(37.5726, 126.9852, 30)
            ),
        ),
        (
            "zones",
            "danger-construction",
            cs.Zone(
                kind=cs.ZONE_KIND_DANGER,
                display_name="익선동 공사장",
                area=_square(37.5758, 126.9895, 0.0004),
                active_windows=[danger_window],
                hysteresis=cs.ZoneHysteresis(
                    entry_sightings=2, exit_absence=duration_pb2.Duration(seconds=300)
                ),
            ),
        ),
        (
            "readers",
            "school-gate",
            cs.Reader(
                kind=cs.READER_KIND_SCHOOL_GATE,
                display_name="정문 리더기",
                location=common_pb2.Point(latitude=37.5742, longitude=126.9868),
                zone=f"{z}/jongno-school",
                gateway=GATEWAY,
                active=True,
            ),
        ),
        (
            "readers",
            "home-minjun",
            cs.Reader(
                kind=cs.READER_KIND_HOME,
                display_name="민준이 집 현관",
                location=common_pb2.Point(latitude=37.5771, longitude=126.9903),
                zone=f"{z}/home-minjun",
                gateway=GATEWAY,
                active=True,
            ),
        ),
        (
            "readers",
            "academy-piano",
            cs.Reader(
                kind=cs.READER_KIND_ACADEMY,
                display_name="학원 입구",
                location=common_pb2.Point(latitude=37.5726, longitude=126.9852),
                zone=f"{z}/academy-piano",
                gateway=GATEWAY,
                active=True,
            ),
        ),
        (
            "readers",
            "bell-school-front",
            cs.Reader(
                kind=cs.READER_KIND_BELL_POLE,
                display_name="학교 앞 비상벨",
                location=common_pb2.Point(latitude=37.5740, longitude=126.9866),
                zone=f"{z}/jongno-school",
                gateway=GATEWAY,
                active=True,
            ),
        ),
        (
            "readers",
            "street-construction",
            cs.Reader(
                kind=cs.READER_KIND_STREET,
                display_name="공사장 옆 골목",
                location=common_pb2.Point(latitude=37.5758, longitude=126.9895),
                gateway=GATEWAY,
                active=True,
            ),
        ),
        (
            "wards",
            "minjun",
            cs.Ward(
                display_name="민준",
                guardians=[f"{g}/demo-guardian", f"{g}/demo-guardian-2"],
                school_zone=f"{z}/jongno-school",
                place_zones=[f"{z}/home-minjun", f"{z}/academy-piano"],
                expected_arrivals=[cs.ExpectedArrival(zone=f"{z}/jongno-school", window=window)],
                active=True,
            ),
        ),
        (
            "wards",
            "seoyeon",
            cs.Ward(
                display_name="서연",
                guardians=[f"{g}/demo-guardian"],
                school_zone=f"{z}/jongno-school",
                active=True,
            ),
        ),
        (
            "tags",
            "minjun-ble",
            cs.Tag(kind=cs.TAG_KIND_BLE, uid="3F2A9C01", ward=f"{c}/wards/minjun", active=True),
        ),
        (
            "tags",
            "seoyeon-rfid",
            cs.Tag(kind=cs.TAG_KIND_RFID, uid="04A1B2C3D4", ward=f"{c}/wards/seoyeon", active=True),
        ),
    ]


async def seed_demo(ctx: ServerContext, area: ChildSafetyArea) -> None:
    center = ctx.settings.center_name
    async with ctx.store.transaction() as tx:
        for collection, resource_id, resource in _resources(center):
            name = f"{center}/{collection}/{resource_id}"
            if await tx.fetchone("SELECT 1 FROM cs_resources WHERE name = ?", (name,)) is None:
                await area.registry.create(tx, collection, center, resource_id, cast(Any, resource))
