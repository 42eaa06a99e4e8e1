"""Emergency rows and location fixes in the store (migration 0002)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ansim.v1 import common_pb2, emergency_pb2

from reference_server.clock import to_rfc3339
from reference_server.domain.emergencies.states import is_active
from reference_server.store.interface import Row, Transaction

_COLUMNS = (
    "name, center, incident_id, reporter_key, mode, kind, state, reporter_active, create_time,"
    " countdown_end_time, data, reporter_frozen, duress_salt, duress_digest, system_key"
)


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Any = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Any = ()) -> list[Row]: ...


@dataclass
class EmergencyRecord:
    """One stored emergency: the operators' view plus what only the center keeps."""

    emergency: emergency_pb2.Emergency
    reporter_key: str
    #: The reporter's view frozen by a duress cancel [EMG-012]; None otherwise.
    reporter_frozen: emergency_pb2.Emergency | None = None
    duress_salt: bytes | None = None
    duress_digest: bytes | None = None
    system_key: str | None = None

    @property
    def name(self) -> str:
        return self.emergency.name

    @property
    def state(self) -> int:
        return self.emergency.state

    @property
    def reporter_active(self) -> bool:
        if self.reporter_frozen is not None:
            return False
        return is_active(self.emergency.state)

    def is_reporter(self, caller_key: str) -> bool:
        return bool(self.reporter_key) and self.reporter_key == caller_key


def _record(row: Row) -> EmergencyRecord:
    frozen = row["reporter_frozen"]
    return EmergencyRecord(
        emergency=emergency_pb2.Emergency.FromString(bytes(row["data"])),
        reporter_key=row["reporter_key"],
        reporter_frozen=emergency_pb2.Emergency.FromString(bytes(frozen)) if frozen is not None else None,
        duress_salt=bytes(row["duress_salt"]) if row["duress_salt"] is not None else None,
        duress_digest=bytes(row["duress_digest"]) if row["duress_digest"] is not None else None,
        system_key=row["system_key"],
    )


def _countdown(record: EmergencyRecord) -> str | None:
    e = record.emergency
    if e.state == emergency_pb2.EMERGENCY_STATE_PENDING and e.HasField("countdown_end_time"):
        return to_rfc3339(e.countdown_end_time.ToDatetime(tzinfo=UTC))
    return None


async def load(db: Reader, name: str) -> EmergencyRecord | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM emergencies WHERE name = ?", (name,))
    return _record(row) if row is not None else None


async def load_with_sequence(db: Reader, name: str, scope: str) -> tuple[EmergencyRecord, int] | None:
    """The emergency and the last event sequence of ``scope``, read in one statement (one snapshot)."""
    row = await db.fetchone(
        f"SELECT {_COLUMNS}, (SELECT last_sequence FROM event_scopes WHERE scope = ?) AS last_sequence"
        " FROM emergencies WHERE name = ?",
        (scope, name),
    )
    if row is None:
        return None
    return _record(row), int(row["last_sequence"] or 0)


async def find_active_for_reporter(tx: Transaction, reporter_key: str, mode: int) -> EmergencyRecord | None:
    row = await tx.fetchone(
        f"SELECT {_COLUMNS} FROM emergencies WHERE reporter_key = ? AND mode = ? AND reporter_active = 1"
        " ORDER BY create_time DESC LIMIT 1",
        (reporter_key, mode),
    )
    return _record(row) if row is not None else None


async def find_by_system_key(tx: Transaction, key: str) -> EmergencyRecord | None:
    row = await tx.fetchone(f"SELECT {_COLUMNS} FROM emergencies WHERE system_key = ?", (key,))
    return _record(row) if row is not None else None


async def insert(tx: Transaction, record: EmergencyRecord) -> None:
    e = record.emergency
    await tx.execute(
        f"INSERT INTO emergencies ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            e.name,
            e.name.split("/emergencies/")[0],
            e.incident_id,
            record.reporter_key,
            e.mode,
            e.kind,
            e.state,
            1 if record.reporter_active else 0,
            to_rfc3339(e.create_time.ToDatetime(tzinfo=UTC)),
            _countdown(record),
            e.SerializeToString(deterministic=True),
            None,
            record.duress_salt,
            record.duress_digest,
            record.system_key,
        ),
    )


async def save(tx: Transaction, record: EmergencyRecord) -> None:
    e = record.emergency
    frozen = record.reporter_frozen
    await tx.execute(
        "UPDATE emergencies SET state = ?, reporter_active = ?, countdown_end_time = ?, data = ?,"
        " reporter_frozen = ?, duress_salt = ?, duress_digest = ? WHERE name = ?",
        (
            e.state,
            1 if record.reporter_active else 0,
            _countdown(record),
            e.SerializeToString(deterministic=True),
            frozen.SerializeToString(deterministic=True) if frozen is not None else None,
            record.duress_salt,
            record.duress_digest,
            e.name,
        ),
    )


async def due_countdowns(db: Reader, now: datetime) -> list[str]:
    rows = await db.fetchall(
        "SELECT name FROM emergencies WHERE countdown_end_time IS NOT NULL AND countdown_end_time <= ?",
        (to_rfc3339(now),),
    )
    return [r["name"] for r in rows]


async def active_counts(db: Reader) -> dict[int, int]:
    rows = await db.fetchall(
        "SELECT mode, COUNT(*) AS n FROM emergencies WHERE state IN (1, 2, 3, 4, 5) GROUP BY mode"
    )
    return {int(r["mode"]): int(r["n"]) for r in rows}


# --- fixes -------------------------------------------------------------------------------------------


async def fix_stored(tx: Transaction, name: str, sequence: int) -> bool:
    row = await tx.fetchone(
        "SELECT 1 AS found FROM emergency_fixes WHERE emergency = ? AND sequence = ?", (name, sequence)
    )
    return row is not None


async def insert_fix(
    tx: Transaction, name: str, sequence: int | None, location: common_pb2.Location, now: datetime
) -> None:
    await tx.execute(
        "INSERT INTO emergency_fixes (emergency, sequence, fix_time, location, received)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            name,
            sequence,
            to_rfc3339(location.fix_time.ToDatetime(tzinfo=UTC)),
            location.SerializeToString(deterministic=True),
            to_rfc3339(now),
        ),
    )


async def fixes_in_time_order(tx: Transaction, name: str) -> list[common_pb2.Location]:
    rows = await tx.fetchall(
        "SELECT location FROM emergency_fixes WHERE emergency = ? ORDER BY fix_time, rowid", (name,)
    )
    return [common_pb2.Location.FromString(bytes(r["location"])) for r in rows]


# --- listing -----------------------------------------------------------------------------------------


async def list_page(
    db: Reader,
    center: str,
    *,
    states: list[int],
    mode: int,
    kinds: list[int],
    incident_id: str,
    after: tuple[str, str] | None,
    limit: int,
) -> list[EmergencyRecord]:
    """Emergencies of ``center`` matching the filters, newest first then by name, after a position."""
    where = ["center = ?"]
    params: list[Any] = [center]
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        params += states
    if mode:
        where.append("mode = ?")
        params.append(mode)
    if kinds:
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        params += kinds
    if incident_id:
        where.append("incident_id = ?")
        params.append(incident_id)
    if after is not None:
        where.append("(create_time < ? OR (create_time = ? AND name > ?))")
        params += [after[0], after[0], after[1]]
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM emergencies WHERE {' AND '.join(where)}"
        " ORDER BY create_time DESC, name ASC LIMIT ?",
        (*params, limit),
    )
    return [_record(r) for r in rows]
