"""Daily aggregates of incidents (STA-010): one count per local day, kind, mode, first handling
center and zone, without incident id, location or person.

The aggregator follows the emergency area's table (``emergencies``, by rowid) and counts each
emergency once it has been raised; an emergency still PENDING (countdown) holds the watermark until
it is raised or cancelled. An emergency cancelled before it was raised is not an incident. Each
incident is remembered by a keyed hash (``stat_counted``, purged with the emergency records) so it is
never counted twice; the watermark is the row ``watermark:emergencies`` of that table.
"""

from __future__ import annotations

import hashlib
from datetime import UTC

from ansim.v1 import common_pb2, emergency_pb2

from reference_server.clock import to_rfc3339
from reference_server.domain.statistics.calendar import local_date
from reference_server.domain.statistics.zones import COUNTED_KINDS, ZoneInfo, all_zones, contains
from reference_server.store.interface import Transaction

E = emergency_pb2
WATERMARK = "watermark:emergencies"
BATCH = 500


def incident_key(incident_id: str) -> str:
    return hashlib.sha256(b"ansim-statistics\x00" + incident_id.encode("utf-8")).hexdigest()


async def _emergency_table(tx: Transaction) -> bool:
    row = await tx.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'emergencies'")
    return row is not None


async def _first_location(tx: Transaction, emergency: E.Emergency) -> common_pb2.Location | None:
    exists = await tx.fetchone(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'emergency_fixes'"
    )
    if exists is not None:
        row = await tx.fetchone(
            "SELECT location FROM emergency_fixes WHERE emergency = ? ORDER BY rowid LIMIT 1",
            (emergency.name,),
        )
        if row is not None:
            return common_pb2.Location.FromString(bytes(row["location"]))
    return emergency.last_location if emergency.HasField("last_location") else None


def zones_of(
    location: common_pb2.Location | None, zones: dict[str, ZoneInfo], raised_on: object
) -> list[str]:
    """Counted zones containing the point, registered no later than the day of the incident."""
    if location is None:
        return []
    found = []
    for zone in sorted(zones.values(), key=lambda z: z.name):
        if zone.kind not in COUNTED_KINDS:
            continue
        if zone.registered is not None and local_date(zone.registered) > raised_on:  # type: ignore[operator]
            continue
        if contains(zone.area, location.latitude, location.longitude):
            found.append(zone.name)
    return found


async def record(
    tx: Transaction,
    *,
    incident_id: str,
    raise_time: object,
    kind: int,
    mode: int,
    center: str,
    zones: list[str],
) -> bool:
    """Count one incident (once); False when it was counted before."""
    key = incident_key(incident_id)
    if await tx.fetchone("SELECT 1 FROM stat_counted WHERE incident_hash = ?", (key,)) is not None:
        return False
    await tx.execute(
        "INSERT INTO stat_counted (incident_hash, counted) VALUES (?, ?)", (key, to_rfc3339(tx.now))
    )
    day = local_date(raise_time).isoformat()  # type: ignore[arg-type]
    for index, zone in enumerate(zones or [""]):
        await tx.execute(
            "INSERT INTO stat_daily (local_date, kind, mode, center, zone, zone_slot, count)"
            " VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (local_date, kind, mode, center, zone, zone_slot)"
            " DO UPDATE SET count = count + 1",
            (day, kind, mode, center, zone, 1 if index == 0 else 0),
        )
    return True


async def catch_up(tx: Transaction, center: str) -> int:
    """Count the emergencies raised since the last pass; returns how many were counted."""
    if not await _emergency_table(tx):
        return 0
    mark = await tx.fetchone("SELECT counted FROM stat_counted WHERE incident_hash = ?", (WATERMARK,))
    after = int(mark["counted"]) if mark is not None else 0
    zones: dict[str, ZoneInfo] | None = None
    counted = 0
    while True:
        rows = await tx.fetchall(
            "SELECT rowid AS rid, data FROM emergencies WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, BATCH),
        )
        if not rows:
            break
        blocked = False
        for row in rows:
            emergency = E.Emergency.FromString(bytes(row["data"]))
            if not emergency.HasField("raise_time"):
                if emergency.state == E.EMERGENCY_STATE_PENDING:
                    blocked = True  # still counting down: decide later
                    break
                after = int(row["rid"])  # cancelled before it was raised: not an incident
                continue
            if zones is None:
                zones = await all_zones(tx)
            raised = emergency.raise_time.ToDatetime(tzinfo=UTC)
            location = await _first_location(tx, emergency)
            counted += await record(
                tx,
                incident_id=emergency.incident_id or emergency.name,
                raise_time=raised,
                kind=emergency.kind,
                mode=emergency.mode,
                center=emergency.handling_center or emergency.home_center or center,
                zones=zones_of(location, zones, local_date(raised)),
            )
            after = int(row["rid"])
        if blocked or len(rows) < BATCH:
            break
    await tx.execute(
        "INSERT INTO stat_counted (incident_hash, counted) VALUES (?, ?)"
        " ON CONFLICT (incident_hash) DO UPDATE SET counted = excluded.counted",
        (WATERMARK, str(after)),
    )
    return counted
