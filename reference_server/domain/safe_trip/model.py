"""A stored trip and its repository (table ``st_trips``, migration 0005)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ansim.v1 import safe_trip_pb2
from google.protobuf import timestamp_pb2

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.store.interface import Params, Row

S = safe_trip_pb2
ACTIVE_STATES = frozenset({S.SAFE_TRIP_STATE_ACTIVE, S.SAFE_TRIP_STATE_ALERTING, S.SAFE_TRIP_STATE_ESCALATED})


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


class Writer(Reader, Protocol):
    async def execute(self, sql: str, params: Params = ()) -> int: ...


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(moment.astimezone(UTC))
    return out


def moment(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def _opt(text: str | None) -> datetime | None:
    return None if text is None else from_rfc3339(text)


def _txt(value: datetime | None) -> str | None:
    return None if value is None else to_rfc3339(value)


@dataclass
class TripRecord:
    """One trip as stored: the public body plus the fields only the center sees."""

    trip: safe_trip_pb2.SafeTrip
    traveler: str
    duress: bytes | None
    duress_emergency: str
    start_fix_time: datetime
    last_fix_time: datetime
    #: Fixes up to this fix_time are left out of off-route detection (set when an alert clears).
    route_reset: datetime | None = None
    last_location_event: datetime | None = None
    fixes_purged: bool = False

    @property
    def name(self) -> str:
        return self.trip.name

    @property
    def center(self) -> str:
        return self.trip.name.split("/safeTrips/", 1)[0]

    @property
    def active(self) -> bool:
        return self.trip.state in ACTIVE_STATES


_COLUMNS = (
    "name, traveler, mode, state, active, body, duress, duress_emergency, start_fix_time,"
    " last_fix_time, off_route_since, last_location_event, end_time, fixes_purged"
)


def _record(row: Row) -> TripRecord:
    return TripRecord(
        trip=safe_trip_pb2.SafeTrip.FromString(bytes(row["body"])),
        traveler=row["traveler"],
        duress=None if row["duress"] is None else bytes(row["duress"]),
        duress_emergency=row["duress_emergency"],
        start_fix_time=from_rfc3339(row["start_fix_time"]),
        last_fix_time=from_rfc3339(row["last_fix_time"]),
        route_reset=_opt(row["off_route_since"]),
        last_location_event=_opt(row["last_location_event"]),
        fixes_purged=bool(row["fixes_purged"]),
    )


def _params(record: TripRecord) -> tuple[object, ...]:
    trip = record.trip
    return (
        trip.name,
        record.traveler,
        trip.mode,
        trip.state,
        1 if record.active else 0,
        trip.SerializeToString(deterministic=True),
        record.duress,
        record.duress_emergency,
        to_rfc3339(record.start_fix_time),
        to_rfc3339(record.last_fix_time),
        _txt(record.route_reset),
        _txt(record.last_location_event),
        _txt(moment(trip.end_time)) if trip.HasField("end_time") else None,
        1 if record.fixes_purged else 0,
    )


async def load(q: Reader, name: str) -> TripRecord | None:
    row = await q.fetchone(f"SELECT {_COLUMNS} FROM st_trips WHERE name = ?", (name,))
    return None if row is None else _record(row)


async def active_of(q: Reader, traveler: str, mode: int) -> str | None:
    row = await q.fetchone(
        "SELECT name FROM st_trips WHERE traveler = ? AND mode = ? AND active = 1", (traveler, mode)
    )
    return None if row is None else str(row["name"])


async def insert(tx: Writer, record: TripRecord) -> None:
    marks = ", ".join("?" * 14)
    await tx.execute(f"INSERT INTO st_trips ({_COLUMNS}) VALUES ({marks})", _params(record))


async def save(tx: Writer, record: TripRecord) -> None:
    await tx.execute(
        f"INSERT OR REPLACE INTO st_trips ({_COLUMNS}) VALUES ({', '.join('?' * 14)})", _params(record)
    )


async def watched(q: Reader) -> list[str]:
    """Trips the scheduler looks at: ACTIVE and ALERTING ones."""
    rows = await q.fetchall(
        "SELECT name FROM st_trips WHERE active = 1 AND state IN (?, ?)",
        (S.SAFE_TRIP_STATE_ACTIVE, S.SAFE_TRIP_STATE_ALERTING),
    )
    return [str(r["name"]) for r in rows]
