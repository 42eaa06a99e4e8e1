"""The time-based child-safety rules the conformance suite cannot wait for (TAG-014 danger-zone exit,
TAG-015 missed expected arrival, GRD-003/GRD-004 the whole escalation ladder) and the timer bounds
(GRD-005, PRV-010), on the reference's domain objects with a hand-moved clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2
from ansim.v1 import guardian_pb2 as gd
from google.protobuf import duration_pb2
from pydantic import ValidationError

from reference_server.config import RetentionSettings, TimerSettings
from reference_server.domain.child_safety.common import KST
from reference_server.domain.child_safety.ingest import Ingest
from reference_server.domain.child_safety.notifications import Notifier
from reference_server.domain.child_safety.registry import Registry
from reference_server.domain.child_safety.scheduler import Scheduler
from reference_server.domain.paging import PageTokens
from reference_server.domain.ports import DomainPorts
from reference_server.events.publisher import Publisher
from reference_server.security.caller import Caller
from reference_server.store.sqlite import SqliteStore

C = "centers/t"
GATEWAY = "gateways/g"
#: Tuesday 3 March 2026, 09:30 Asia/Seoul.
START = datetime(2026, 3, 3, 9, 30, tzinfo=KST).astimezone(UTC)


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


class Area:
    def __init__(self, store: SqliteStore, clock: ManualClock) -> None:
        self.store = store
        self.clock = clock
        self.registry = Registry(C, PageTokens(b"k" * 32))
        self.notifier = Notifier(C, Publisher(store, b"k" * 32), TimerSettings(), demo=False)
        self.ingest = Ingest(C, store, clock, self.notifier, DomainPorts())
        self.scheduler = Scheduler(store, clock, self.notifier, self.ingest)
        self.gateway = Caller(subject=GATEWAY, role=common_pb2.ROLE_READER_GATEWAY)

    async def create(
        self, collection: str, rid: str, resource: cs.Ward | cs.Tag | cs.Reader | cs.Zone
    ) -> None:
        async with self.store.transaction() as tx:
            await self.registry.create(tx, collection, C, rid, resource)  # type: ignore[type-var]

    async def sighting(
        self, reader: str, uid: str, at: datetime, mode: int = common_pb2.MODE_LIVE
    ) -> cs.TagEventAck:
        event = cs.TagEvent(
            event_id=f"00000000-0000-4000-8000-{int(at.timestamp() * 1000) % 10**12:012d}",
            reader=f"{C}/readers/{reader}",
            tag_uid=uid,
            kind=cs.TAG_EVENT_KIND_SIGHTING,
            mode=mode,  # type: ignore[arg-type]
            sighting=cs.SightingDetails(),
        )
        event.observed_time.FromDatetime(at)
        return await self.ingest.handle(self.gateway, event)

    async def copies(self, kind: int) -> list[gd.Notification]:
        rows = await self.store.fetchall("SELECT body FROM cs_notifications ORDER BY name")
        found = [gd.Notification.FromString(bytes(r["body"])) for r in rows]
        return [n for n in found if n.event_kind == kind]


def circle(lat: float, lon: float, r: float) -> common_pb2.Area:
    area = common_pb2.Area()
    area.circles.add(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=r)
    return area


@pytest.fixture
async def area(tmp_path: Path) -> AsyncIterator[Area]:
    clock = ManualClock(START)
    store = await SqliteStore.open(tmp_path / "c.sqlite", clock=clock)
    a = Area(store, clock)
    await a.create(
        "zones",
        "school",
        cs.Zone(
            kind=cs.ZONE_KIND_SCHOOL,
            display_name="학교",
            area=circle(37.57, 126.98, 100),
            school_contacts=[f"{C}/guardians/teacher"],
        ),
    )
    await a.create(
        "zones",
        "danger",
        cs.Zone(
            kind=cs.ZONE_KIND_DANGER,
            display_name="공사장",
            area=circle(37.58, 126.98, 30),
            hysteresis=cs.ZoneHysteresis(exit_absence=duration_pb2.Duration(seconds=120)),
        ),
    )
    gate = cs.Reader(
        kind=cs.READER_KIND_SCHOOL_GATE,
        location=common_pb2.Point(latitude=37.57, longitude=126.98),
        zone=f"{C}/zones/school",
        gateway=GATEWAY,
        active=True,
    )
    await a.create("readers", "gate", gate)
    street = cs.Reader(
        kind=cs.READER_KIND_STREET,
        location=common_pb2.Point(latitude=37.58, longitude=126.98),
        gateway=GATEWAY,
    )
    await a.create("readers", "street", street)
    window = cs.LocalTimeWindow(weekdays=[2], start_local_time="08:00", end_local_time="08:50")  # Tuesday
    for ward, uid in (("late", "AAAA0001"), ("early", "AAAA0002")):
        await a.create(
            "wards",
            ward,
            cs.Ward(
                display_name=ward,
                guardians=[f"{C}/guardians/parent-{ward}"],
                school_zone=f"{C}/zones/school",
                expected_arrivals=[cs.ExpectedArrival(zone=f"{C}/zones/school", window=window)],
                active=True,
            ),
        )
        await a.create(
            "tags", ward, cs.Tag(kind=cs.TAG_KIND_BLE, uid=uid, ward=f"{C}/wards/{ward}", active=True)
        )
    yield a
    await store.close()


async def test_missed_expected_arrival_only_for_the_ward_not_seen(area: Area) -> None:
    """TAG-015: 08:50 + 10 min grace passed; the ward seen at the gate at 08:30 is not missed."""
    seen = datetime(2026, 3, 3, 8, 30, tzinfo=KST).astimezone(UTC)
    ack = await area.sighting("gate", "AAAA0002", seen)
    assert ack.status == cs.TAG_EVENT_ACK_STATUS_ACCEPTED
    await area.scheduler.tick()
    missed = await area.copies(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL)
    assert [n.ward for n in missed] == [f"{C}/wards/late"]
    assert missed[0].severity == gd.NOTIFICATION_SEVERITY_WARNING
    assert missed[0].event_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 3, 9, 0, tzinfo=KST)
    area.clock.advance(30)
    await area.scheduler.tick()
    assert len(await area.copies(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL)) == 1, "derived once per day"
    assert missed[0].mode == common_pb2.MODE_LIVE, "a ward without tag events: LIVE (CHD-017)"


async def test_missed_arrival_takes_the_mode_of_the_wards_latest_tag_event(area: Area) -> None:
    """CHD-017: the latest tag event by observed_time decides, whatever the arrival order."""
    morning = datetime(2026, 3, 3, 7, 0, tzinfo=KST).astimezone(UTC)
    await area.sighting("street", "AAAA0001", morning + timedelta(minutes=5), common_pb2.MODE_TEST)
    await area.sighting("street", "AAAA0001", morning, common_pb2.MODE_LIVE)  # older, arrives later
    await area.scheduler.tick()
    missed = await area.copies(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL)
    modes = {n.ward: n.mode for n in missed}
    assert modes[f"{C}/wards/late"] == common_pb2.MODE_TEST
    assert modes[f"{C}/wards/early"] == common_pb2.MODE_LIVE


async def test_danger_zone_exit_after_exit_absence(area: Area) -> None:
    """TAG-013 entry with two sightings, TAG-014 exit after exit_absence, timed at the last sighting."""
    t0 = START - timedelta(seconds=20)
    await area.sighting("street", "AAAA0001", t0)
    await area.sighting("street", "AAAA0001", t0 + timedelta(seconds=10))
    assert len(await area.copies(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE)) == 1
    area.clock.advance(60)
    await area.scheduler.escalate_due(area.clock.now())  # keep the ladder out of this test's way
    from reference_server.domain.child_safety.derivation import danger_exits

    async with area.store.transaction() as tx:
        assert not await danger_exits(tx, area.clock.now()), "120 s have not passed since the last sighting"
    area.clock.advance(100)
    await area.scheduler.tick()
    left = await area.copies(cs.DERIVED_EVENT_KIND_LEFT_DANGER_ZONE)
    assert len(left) == 1
    assert left[0].event_time.ToDatetime(tzinfo=UTC) == t0 + timedelta(seconds=10)
    assert left[0].severity == gd.NOTIFICATION_SEVERITY_INFO


async def test_emergency_ladder_reaches_police_and_stops(area: Area) -> None:
    """GRD-003, GRD-004, GRD-006: GUARDIAN → SCHOOL → CENTER (operators' copy) → POLICE_112, 60 s apart."""
    t0 = START - timedelta(seconds=5)
    await area.sighting("street", "AAAA0001", t0)
    await area.sighting("street", "AAAA0001", t0 + timedelta(seconds=1))
    levels = []
    for _ in range(4):
        area.clock.advance(61)
        await area.scheduler.escalate_due(area.clock.now())
        copies = await area.copies(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE)
        levels.append(copies[0].escalation_level)
    assert levels == [
        gd.ESCALATION_LEVEL_SCHOOL,
        gd.ESCALATION_LEVEL_CENTER,
        gd.ESCALATION_LEVEL_POLICE_112,
        gd.ESCALATION_LEVEL_POLICE_112,
    ]
    copies = await area.copies(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE)
    recipients = {n.name.split("/notifications/")[0]: n.recipient_level for n in copies}
    assert recipients == {
        f"{C}/guardians/parent-late": gd.ESCALATION_LEVEL_GUARDIAN,
        f"{C}/guardians/teacher": gd.ESCALATION_LEVEL_SCHOOL,
        f"{C}/guardians/operators": gd.ESCALATION_LEVEL_CENTER,
    }
    assert all(not n.HasField("ack_deadline") for n in copies), "no deadline at the top rung"
    pending = await area.store.fetchone("SELECT emergency_kind FROM cs_derived WHERE kind = 7")
    assert pending is not None and pending["emergency_kind"] != 0, (
        "the danger-zone emergency is due at CENTER"
    )


async def test_warning_stops_at_center(area: Area) -> None:
    """GRD-004: a WARNING (missed arrival) never goes beyond CENTER; its step is 10 minutes."""
    await area.scheduler.tick()
    for _ in range(4):
        area.clock.advance(601)
        await area.scheduler.escalate_due(area.clock.now())
    levels = {n.escalation_level for n in await area.copies(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL)}
    assert levels == {gd.ESCALATION_LEVEL_CENTER}


def test_timer_and_retention_bounds() -> None:
    """GRD-005: steps within 30-180 s / 5-30 min, TEST steps down to 5 s; PRV-010: sightings 1-30 days."""
    TimerSettings(guardian_emergency_step=timedelta(seconds=30), guardian_test_step=timedelta(seconds=5))
    for bad in (
        {"guardian_emergency_step": timedelta(seconds=10)},
        {"guardian_warning_step": timedelta(hours=1)},
        {"guardian_test_step": timedelta(seconds=2)},
    ):
        with pytest.raises(ValidationError):
            TimerSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RetentionSettings(tag_sightings=timedelta(days=40))
