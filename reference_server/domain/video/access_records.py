"""The access record of spec §12.7: canonical form, hash chain, append, read and verify.

Each record is stored column by column exactly as its canonical form writes it (times as RFC 3339
UTC with six fractional digits, enums by value name), so what ListAccessRecords serves, what an
auditor recomputes and what ``ansim audit verify`` checks are the same bytes [VID-020].
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from ansim.v1 import camera_pb2, common_pb2, error_pb2
from google.protobuf import timestamp_pb2

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.store.sqlite import SqliteTransaction

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One access record, every member as its canonical-form line (spec §12.7 order)."""

    sequence: int
    record_time: str
    outcome: str
    name: str
    video_grant: str
    emergency: str
    agency: str
    subject_id: str
    subject_role: str
    subject_agency: str
    subject_center: str
    actor_id: str
    actor_role: str
    actor_agency: str
    actor_center: str
    cameras: str
    purpose: str
    mode: str
    denial_reason: str
    revocation_reason: str
    not_before: str
    not_after: str
    request_id: str
    previous_hash: str
    record_hash: str = ""


COLUMNS = tuple(f.name for f in fields(StoredRecord))
COLUMN_LIST = ", ".join(COLUMNS)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def canonical_form(record: StoredRecord) -> bytes:
    """The 24 lines of spec §12.7, escaped, joined by LF, UTF-8."""
    lines = [str(record.sequence)] + [getattr(record, name) for name in COLUMNS[1:-1]]
    return "\n".join(_escape(line) for line in lines).encode("utf-8")


def compute_hash(record: StoredRecord) -> str:
    return hashlib.sha256(canonical_form(record)).hexdigest()


def time_text(moment: datetime | None) -> str:
    return "" if moment is None else to_rfc3339(moment)


def _subject(subject: common_pb2.Subject | None) -> tuple[str, str, str, str]:
    if subject is None:
        return "", "ROLE_UNSPECIFIED", "", ""
    return subject.id, common_pb2.Role.Name(subject.role), subject.agency, subject.center


@dataclass(frozen=True, slots=True)
class RecordInput:
    """What a caller knows about a record before the chain gives it a sequence and hashes."""

    outcome: int
    emergency: str
    agency: str
    subject: common_pb2.Subject | None
    cameras: Sequence[str]
    purpose: str
    mode: int
    video_grant: str = ""
    actor: common_pb2.Subject | None = None
    denial_reason: int = 0
    revocation_reason: int = 0
    not_before: datetime | None = None
    not_after: datetime | None = None
    request_id: str = ""


async def append(tx: SqliteTransaction, center: str, data: RecordInput) -> StoredRecord:
    """Append ``data`` as the next record of the chain, inside ``tx`` [VID-001, VID-019, VID-020]."""
    subject = _subject(data.subject)
    actor = _subject(data.actor)
    record_time = time_text(tx.now)

    def write(conn: sqlite3.Connection) -> StoredRecord:
        last = conn.execute(
            "SELECT sequence, record_hash FROM access_records ORDER BY sequence DESC LIMIT 1"
        ).fetchone()
        if last is None:
            last = conn.execute(
                "SELECT sequence, record_hash FROM access_record_anchor WHERE id = 1"
            ).fetchone()
        sequence, previous = int(last[0]) + 1, str(last[1])
        record = StoredRecord(
            sequence,
            record_time,
            camera_pb2.AccessOutcome.Name(data.outcome),  # type: ignore[arg-type]
            f"{center}/accessRecords/{sequence}",
            data.video_grant,
            data.emergency,
            data.agency,
            *subject,
            *actor,
            ",".join(data.cameras),
            data.purpose,
            common_pb2.Mode.Name(data.mode),  # type: ignore[arg-type]
            error_pb2.ErrorReason.Name(data.denial_reason),  # type: ignore[arg-type]
            camera_pb2.VideoGrantRevocationReason.Name(data.revocation_reason),  # type: ignore[arg-type]
            time_text(data.not_before),
            time_text(data.not_after),
            data.request_id,
            previous,
        )
        record = _with_hash(record)
        conn.execute(
            f"INSERT INTO access_records ({COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})",
            tuple(getattr(record, c) for c in COLUMNS),
        )
        return record

    return await tx.run(write)


def _with_hash(record: StoredRecord) -> StoredRecord:
    values = {c: getattr(record, c) for c in COLUMNS}
    values["record_hash"] = compute_hash(record)
    return StoredRecord(**values)


def from_row(row: dict[str, object] | sqlite3.Row) -> StoredRecord:
    return StoredRecord(**{c: row[c] for c in COLUMNS})  # type: ignore[arg-type]


def _timestamp(text: str) -> timestamp_pb2.Timestamp | None:
    if not text:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(from_rfc3339(text))
    return stamp


def _subject_message(sid: str, role: str, agency: str, center: str) -> common_pb2.Subject | None:
    if not (sid or agency or center) and role == "ROLE_UNSPECIFIED":
        return None
    return common_pb2.Subject(id=sid, role=common_pb2.Role.Value(role), agency=agency, center=center)


def to_message(record: StoredRecord) -> camera_pb2.AccessRecord:
    """The wire AccessRecord of a stored record."""
    message = camera_pb2.AccessRecord(
        name=record.name,
        sequence=record.sequence,
        previous_hash=record.previous_hash,
        record_hash=record.record_hash,
        outcome=camera_pb2.AccessOutcome.Value(record.outcome),
        video_grant=record.video_grant,
        emergency=record.emergency,
        agency=record.agency,
        cameras=[c for c in record.cameras.split(",") if c],
        purpose=record.purpose,
        mode=common_pb2.Mode.Value(record.mode),
        denial_reason=error_pb2.ErrorReason.Value(record.denial_reason),
        revocation_reason=camera_pb2.VideoGrantRevocationReason.Value(record.revocation_reason),
        request_id=record.request_id,
    )
    for field_name, text in (
        ("record_time", record.record_time),
        ("not_before", record.not_before),
        ("not_after", record.not_after),
    ):
        stamp = _timestamp(text)
        if stamp is not None:
            getattr(message, field_name).CopyFrom(stamp)
    subject = _subject_message(
        record.subject_id, record.subject_role, record.subject_agency, record.subject_center
    )
    if subject is not None:
        message.subject.CopyFrom(subject)
    actor = _subject_message(record.actor_id, record.actor_role, record.actor_agency, record.actor_center)
    if actor is not None:
        message.actor.CopyFrom(actor)
    return message


# --- verification ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainProblem:
    sequence: int
    reason: str


def verify(
    records: Iterable[StoredRecord], anchor: tuple[int, str] = (0, GENESIS_HASH)
) -> ChainProblem | None:
    """The first record whose sequence, link or hash is wrong, or None; records in stored order."""
    expected, previous = anchor[0] + 1, anchor[1]
    for record in records:
        if record.sequence != expected:
            return ChainProblem(
                record.sequence,
                f"expected access record {expected} here: a record was removed, inserted or reordered",
            )
        if record.previous_hash != previous:
            return ChainProblem(
                record.sequence,
                "previous_hash is not the record_hash of the preceding record: inserted or reordered",
            )
        if compute_hash(record) != record.record_hash:
            return ChainProblem(
                record.sequence, "record_hash does not match the record's canonical form: edited"
            )
        expected, previous = record.sequence + 1, record.record_hash
    return None


def iter_stored(conn: sqlite3.Connection) -> Iterator[StoredRecord]:
    """Every record in physical row order (rowid), so a reordering shows as a sequence problem."""
    conn.row_factory = sqlite3.Row
    yield from (from_row(r) for r in conn.execute(f"SELECT {COLUMN_LIST} FROM access_records ORDER BY rowid"))


def anchor_of(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT sequence, record_hash FROM access_record_anchor WHERE id = 1").fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
