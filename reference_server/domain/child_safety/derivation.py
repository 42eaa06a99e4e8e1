"""Derivation rules for sightings (spec §14.5.1 place presence, §14.5.2 danger zones, TAG-021
ordering) and the time-based rules (TAG-014 danger-zone exit, TAG-015 missed expected arrival)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import Queryable
from reference_server.domain.child_safety.ingest_state import Danger, IngestState, Presence
from reference_server.domain.child_safety.notifications import Derived
from reference_server.domain.child_safety.places import local, zone_active
from reference_server.domain.child_safety.registry import effective_zone
from reference_server.store.interface import Transaction

TOGGLE_QUIET = timedelta(seconds=120)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PLACE_KINDS = {
    cs.ZONE_KIND_SCHOOL: (cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL, cs.DERIVED_EVENT_KIND_LEFT_SCHOOL),
    cs.ZONE_KIND_HOME: (cs.DERIVED_EVENT_KIND_HOME_IN, cs.DERIVED_EVENT_KIND_HOME_OUT),
    cs.ZONE_KIND_ACADEMY: (cs.DERIVED_EVENT_KIND_ACADEMY_IN, cs.DERIVED_EVENT_KIND_ACADEMY_OUT),
}
PLACE_READERS = {cs.READER_KIND_SCHOOL_GATE, cs.READER_KIND_HOME, cs.READER_KIND_ACADEMY}


def new_id() -> str:
    return uuid.uuid4().hex


def reader_location(reader: cs.Reader, observed: datetime, method: int) -> common_pb2.Location:
    """The reader's surveyed position as a Location (§14.5.4, GRD-016)."""
    location = common_pb2.Location(
        latitude=reader.location.latitude,
        longitude=reader.location.longitude,
        radius_m=0,
        method=method,  # type: ignore[arg-type]
    )
    # As fix_time.FromDatetime(observed) for an aware ``observed``, without its time tuple (≈ 5×
    # cheaper; one per ingested sighting).
    since = observed - _EPOCH
    location.fix_time.seconds = since.days * 86_400 + since.seconds
    location.fix_time.nanos = since.microseconds * 1000
    return location


async def record_derived(tx: Transaction, d: Derived) -> None:
    await tx.execute(
        "INSERT INTO cs_derived (id, kind, ward, tag, reader, zone, event_time, mode, created,"
        " emergency_kind, location) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            d.id,
            d.kind,
            d.ward.name if d.ward is not None else "",
            d.tag,
            d.reader,
            d.zone,
            to_rfc3339(d.event_time),
            d.mode,
            to_rfc3339(tx.now),
            d.emergency_kind,
            d.location.SerializeToString() if d.location is not None else None,
        ),
    )


async def _ordered(state: IngestState, ward: str, observed: datetime) -> bool:
    """TAG-021: whether a sighting is not older than one already evaluated (and advance the clock)."""
    last = await state.ward_clock(ward)
    if last is not None and observed < last:
        return False
    state.set_ward_clock(ward, observed)
    return True


async def _place(
    state: IngestState, ward: cs.Ward, reader: cs.Reader, direction: int, observed: datetime, mode: int
) -> Derived | None:
    """§14.5.1 presence table, TAG-011 and TAG-012."""
    zone_name = reader.zone
    if reader.kind not in PLACE_READERS or (
        zone_name != ward.school_zone and zone_name not in ward.place_zones
    ):
        return None
    zone = await state.load(reader.zone, cs.Zone)
    if zone is None or zone.kind not in PLACE_KINDS:
        return None
    today = local(observed).date().isoformat()
    row = await state.presence(ward.name, zone.name)
    reset_inside = zone.kind == cs.ZONE_KIND_HOME
    inside = reset_inside if row is None or row.local_date != today else row.inside
    previous = row.last_sighting if row is not None else None
    new_inside = inside
    if direction == cs.SIGHTING_DIRECTION_INBOUND:
        new_inside = True
    elif direction == cs.SIGHTING_DIRECTION_OUTBOUND:
        new_inside = False
    elif previous is None or observed - previous >= TOGGLE_QUIET:
        new_inside = not inside
    state.set_presence(ward.name, zone.name, Presence(new_inside, today, observed))
    if new_inside == inside:
        return None
    kind_in, kind_out = PLACE_KINDS[zone.kind]
    return Derived(
        id=new_id(),
        kind=kind_in if new_inside else kind_out,
        mode=mode,
        event_time=observed,
        ward=ward,
        reader=reader.name,
        zone=zone.name,
        zone_display_name=zone.display_name,
        location=reader_location(reader, observed, common_pb2.POSITIONING_METHOD_TAG_READER),
    )


async def _danger(
    state: IngestState,
    ward: cs.Ward,
    lat: float,
    lon: float,
    observed: datetime,
    mode: int,
    reader: str,
    location: common_pb2.Location,
    test_exit_absence: timedelta | None = None,
) -> list[Derived]:
    """§14.5.2 entry hysteresis (TAG-013); exit is time-based (see :func:`danger_exits`)."""
    found: list[Derived] = []
    for zone in await state.danger_zones():
        h = zone.hysteresis
        row = await state.danger(ward.name, zone.name)
        is_in = row.inside if row else False
        count = row.run_count if row else 0
        run_start = row.run_start if row else None
        last_in = row.last_in if row else None
        inside = state.inside(zone, lat, lon)
        if inside:
            if not is_in:
                if (
                    last_in is None
                    or count == 0
                    or observed - last_in > _exit_absence(zone, mode, test_exit_absence)
                ):
                    count, run_start = 0, observed
                count += 1
                assert run_start is not None
                if zone_active(zone, observed) and (
                    count >= h.entry_sightings or observed - run_start >= h.entry_dwell.ToTimedelta()
                ):
                    is_in, count, run_start = True, 0, None
                    found.append(
                        Derived(
                            id=new_id(),
                            kind=cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE,
                            mode=mode,
                            event_time=observed,
                            ward=ward,
                            reader=reader,
                            zone=zone.name,
                            zone_display_name=zone.display_name,
                            location=location,
                        )
                    )
            last_in = observed
        elif not is_in:
            count, run_start = 0, None
        else:
            continue  # IN: only the absence timer leaves
        state.set_danger(ward.name, zone.name, Danger(is_in, count, run_start, last_in, mode))
    return found


async def on_sighting(
    state: IngestState,
    ward: cs.Ward,
    reader: cs.Reader,
    event: cs.TagEvent,
    observed: datetime,
    location: common_pb2.Location,
    test_exit_absence: timedelta | None = None,
) -> list[Derived]:
    """Derived events of one accepted SIGHTING of ``ward`` observed at ``observed`` (place and
    danger rules); ``test_exit_absence`` replaces the zones' exit absence for TEST-mode sightings
    [TAG-022]. The state read and changed is ``state``'s (written back by its flush, in its
    transaction)."""
    if not await _ordered(state, ward.name, observed) or not ward.active:
        return []
    found: list[Derived] = []
    place = await _place(state, ward, reader, event.sighting.direction, observed, event.mode)
    if place is not None:
        found.append(place)
    found += await _danger(
        state,
        ward,
        location.latitude,
        location.longitude,
        observed,
        event.mode,
        reader.name,
        location,
        test_exit_absence,
    )
    return found


def _exit_absence(zone: cs.Zone, mode: int, test_exit_absence: timedelta | None) -> timedelta:
    """The exit absence in force for sightings of ``mode`` in an effective zone [TAG-014, TAG-022]."""
    if mode == common_pb2.MODE_TEST and test_exit_absence is not None:
        return test_exit_absence
    return zone.hysteresis.exit_absence.ToTimedelta()


async def danger_exits(
    tx: Transaction, now: datetime, test_exit_absence: timedelta | None = None
) -> list[Derived]:
    """TAG-014: LEFT_DANGER_ZONE for wards IN a zone without an in-zone sighting for exit_absence
    (``test_exit_absence`` when the last in-zone sighting was TEST-mode, TAG-022)."""
    found: list[Derived] = []
    for row in await tx.fetchall("SELECT * FROM cs_danger WHERE inside = 1"):
        zone = await repository.load(tx, row["zone"], cs.Zone)
        ward = await repository.load(tx, row["ward"], cs.Ward)
        last_in = from_rfc3339(row["last_in"])
        mode = int(row["mode"])
        absence = _exit_absence(effective_zone(zone), mode, test_exit_absence) if zone else timedelta(0)
        if zone is not None and now - last_in < absence:
            continue
        await tx.execute(
            "UPDATE cs_danger SET inside = 0, run_count = 0, run_start = NULL WHERE ward = ? AND zone = ?",
            (row["ward"], row["zone"]),
        )
        if zone is None or ward is None:
            continue
        found.append(
            Derived(
                id=new_id(),
                kind=cs.DERIVED_EVENT_KIND_LEFT_DANGER_ZONE,
                mode=mode,
                event_time=last_in,
                ward=ward,
                zone=zone.name,
                zone_display_name=zone.display_name,
            )
        )
    return found


def _entry_key(e: cs.ExpectedArrival) -> str:
    days = ",".join(str(d) for d in e.window.weekdays)
    return f"{e.zone}|{days}|{e.window.start_local_time}|{e.window.end_local_time}"


def _window_end(e: cs.ExpectedArrival, day: datetime) -> datetime:
    hh, mm = (int(x) for x in e.window.end_local_time.split(":"))
    start_of_day = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return start_of_day + timedelta(hours=hh, minutes=mm)


async def missed_arrivals(tx: Transaction, q: Queryable, now: datetime) -> list[Derived]:
    """TAG-015: for each active ward and expected window of today (Asia/Seoul) whose end + grace has
    passed, MISSED_EXPECTED_ARRIVAL unless a reader of the zone saw the ward that day."""
    found: list[Derived] = []
    today = local(now)
    date = today.date().isoformat()
    for ward in await repository.list_all(tx, "wards", cs.Ward):
        if not ward.active:
            continue
        for e in ward.expected_arrivals:
            if today.isoweekday() not in e.window.weekdays:
                continue
            grace = e.grace.ToTimedelta() if e.HasField("grace") else timedelta(minutes=10)
            due = _window_end(e, today) + grace
            if now < due:
                continue
            key = _entry_key(e)
            seen = await tx.fetchone(
                "SELECT 1 FROM cs_expected_checked WHERE ward = ? AND entry = ? AND local_date = ?",
                (ward.name, key, date),
            )
            if seen is not None:
                continue
            await tx.execute(
                "INSERT INTO cs_expected_checked (ward, entry, local_date) VALUES (?, ?, ?)",
                (ward.name, key, date),
            )
            zone = await repository.load(tx, e.zone, cs.Zone)
            if zone is None or date in zone.closed_dates:
                continue
            if await _seen_at_zone(tx, ward.name, e.zone, today, due):
                continue
            found.append(
                Derived(
                    id=new_id(),
                    kind=cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL,
                    mode=await ward_mode(tx, ward.name),
                    event_time=due,
                    ward=ward,
                    zone=zone.name,
                    zone_display_name=zone.display_name,
                )
            )
    return found


async def ward_mode(q: Queryable, ward: str) -> int:
    """The mode of events derived for the ward from time alone: that of its most recent tag event,
    LIVE when it has none (CHD-017; a Ward carries no mode in v1)."""
    row = await q.fetchone("SELECT mode FROM cs_ward_mode WHERE ward = ?", (ward,))
    return int(row["mode"]) if row is not None else common_pb2.MODE_LIVE


async def _seen_at_zone(tx: Transaction, ward: str, zone: str, today: datetime, until: datetime) -> bool:
    start = today.replace(hour=0, minute=0, second=0, microsecond=0)
    readers = [r.name for r in await repository.list_all(tx, "readers", cs.Reader) if r.zone == zone]
    if not readers:
        return False
    marks = ",".join("?" for _ in readers)
    row = await tx.fetchone(
        f"SELECT 1 FROM cs_sightings WHERE ward = ? AND reader IN "
        f"({marks}) AND observed >= ? AND observed <= ?",
        (ward, *readers, to_rfc3339(start), to_rfc3339(until)),
    )
    return row is not None
