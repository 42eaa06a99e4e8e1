"""The camera rows in the store (table ``cameras`` of migration 0003).

Writes are plain functions on a ``sqlite3.Connection`` so that the importer (a separate process,
``ansim cameras import``) and the server (demo seed) share them; every batch bumps
``camera_meta.change_seq`` and stamps the rows it changed with it, which is how a running server
finds what changed (see ``inventory.CameraInventory.refresh``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from ansim.v1 import camera_pb2
from google.protobuf import timestamp_pb2

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.cameras.convert import camera_id

COLUMNS = "key, camera_id, management_number, agency_code, purpose, latitude, longitude, searchable"


@dataclass(frozen=True, slots=True)
class Upserted:
    """What one row did: ``inserted``, ``updated`` or ``unchanged``, and the camera id it got."""

    outcome: str
    camera_id: str


def _timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(from_rfc3339(text))
    return stamp


def next_change_seq(conn: sqlite3.Connection) -> int:
    """Bump and return the change counter (call inside the batch's transaction)."""
    conn.execute("UPDATE camera_meta SET change_seq = change_seq + 1 WHERE id = 1")
    return int(conn.execute("SELECT change_seq FROM camera_meta WHERE id = 1").fetchone()[0])


def _free_id(conn: sqlite3.Connection, wanted: str, agency_code: str) -> str:
    """``wanted``, or for a collision ``wanted-<개방자치단체코드>`` (then ``-2``, ``-3`` …) [CAM-001]."""
    taken = "SELECT 1 FROM cameras WHERE camera_id = ?"
    if conn.execute(taken, (wanted,)).fetchone() is None:
        return wanted
    base = f"{wanted}-{agency_code or '0000000'}"[:63]
    candidate, n = base, 1
    while conn.execute(taken, (candidate,)).fetchone() is not None:
        n += 1
        suffix = f"-{n}"
        candidate = base[: 63 - len(suffix)] + suffix
    return candidate


class Prepared(NamedTuple):
    """A camera as the ``cameras`` row stores it: the serialised message, its hash and the indexed
    columns (made by ``prepare``, possibly in another process than the one that writes it)."""

    management_number: str
    agency_code: str
    purpose: int
    latitude: float | None
    longitude: float | None
    searchable: int
    content_hash: str
    data: bytes


def prepare(camera: camera_pb2.Camera) -> Prepared:
    """The stored form of ``camera``; ``content_hash`` is SHA-256 of its deterministic serialisation."""
    data = camera.SerializeToString(deterministic=True)
    if camera.HasField("location"):
        point = camera.location
        latitude: float | None = point.latitude
        longitude: float | None = point.longitude
        found = int(camera.data_update_kind != camera_pb2.DATASET_UPDATE_KIND_DELETE)  # = searchable()
    else:
        latitude = longitude = None
        found = 0
    return Prepared(
        camera.management_number,
        camera.admin_codes.agency_code,
        camera.purpose,
        latitude,
        longitude,
        found,
        hashlib.sha256(data).hexdigest(),
        data,
    )


_UPDATE = (
    "UPDATE cameras SET purpose = ?, latitude = ?, longitude = ?, searchable = ?, content_hash = ?,"
    " data = ?, update_time = ?, change_seq = ? WHERE key = ?"
)
_INSERT = (
    "INSERT INTO cameras (camera_id, management_number, agency_code, purpose, latitude, longitude,"
    " searchable, content_hash, data, create_time, update_time, change_seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def upsert(conn: sqlite3.Connection, camera: camera_pb2.Camera, now: datetime, change_seq: int) -> Upserted:
    """Insert a camera or update it in place, keyed by (관리번호, 개방자치단체코드); the id never changes."""
    return upsert_prepared(conn, prepare(camera), now, change_seq)


def upsert_prepared(conn: sqlite3.Connection, row: Prepared, now: datetime, change_seq: int) -> Upserted:
    """``upsert`` of a prepared camera."""
    found = conn.execute(
        "SELECT key, camera_id, content_hash FROM cameras WHERE management_number = ? AND agency_code = ?",
        (row.management_number, row.agency_code),
    ).fetchone()
    stamp = to_rfc3339(now)
    if found is not None:
        if found[2] == row.content_hash:
            return Upserted("unchanged", found[1])
        conn.execute(_UPDATE, (*row[2:], stamp, change_seq, found[0]))
        return Upserted("updated", found[1])
    cid = _free_id(conn, camera_id(row.management_number), row.agency_code)
    conn.execute(_INSERT, (cid, *row, stamp, stamp, change_seq))
    return Upserted("inserted", cid)


_IN_CHUNK = 400  # bound parameters per IN (...) query


def _existing(conn: sqlite3.Connection, numbers: list[str]) -> dict[tuple[str, str], tuple[int, str, str]]:
    """(관리번호, 개방자치단체코드) → (key, camera_id, content_hash) of the stored rows among ``numbers``."""
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    unique = list(dict.fromkeys(numbers))
    for i in range(0, len(unique), _IN_CHUNK):
        part = unique[i : i + _IN_CHUNK]
        for row in conn.execute(
            "SELECT management_number, agency_code, key, camera_id, content_hash FROM cameras"
            f" WHERE management_number IN ({', '.join('?' * len(part))})",
            part,
        ):
            found[(row[0], row[1])] = (row[2], row[3], row[4])
    return found


def _taken_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    taken: set[str] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        part = ids[i : i + _IN_CHUNK]
        sql = f"SELECT camera_id FROM cameras WHERE camera_id IN ({', '.join('?' * len(part))})"
        taken.update(r[0] for r in conn.execute(sql, part))
    return taken


def upsert_many(
    conn: sqlite3.Connection, cameras: Sequence[camera_pb2.Camera], now: datetime, change_seq: int
) -> list[Upserted]:
    """``upsert`` of each camera, in order, with the same outcomes, but with one lookup query per
    few hundred cameras and the plain inserts and updates sent with ``executemany``."""
    return upsert_prepared_many(conn, [prepare(c) for c in cameras], now, change_seq)


def upsert_prepared_many(
    conn: sqlite3.Connection, rows: Sequence[Prepared], now: datetime, change_seq: int
) -> list[Upserted]:
    """``upsert_many`` of prepared cameras."""
    stamp = to_rfc3339(now)
    found = _existing(conn, [r.management_number for r in rows])
    wanted = [camera_id(r.management_number) for r in rows]
    taken = _taken_ids(conn, list(dict.fromkeys(wanted)))
    results: list[Upserted | None] = []
    inserts: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    seen: set[tuple[str, str]] = set()
    later: list[int] = []  # positions handled one by one after the batch (id collisions, repeats)
    for i, row in enumerate(rows):
        key = (row.management_number, row.agency_code)
        if key in seen:
            later.append(i)
            results.append(None)
            continue
        seen.add(key)
        stored = found.get(key)
        if stored is not None:
            if stored[2] == row.content_hash:
                results.append(Upserted("unchanged", stored[1]))
                continue
            updates.append((*row[2:], stamp, change_seq, stored[0]))
            results.append(Upserted("updated", stored[1]))
            continue
        cid = wanted[i]
        if cid in taken:
            later.append(i)
            results.append(None)
            continue
        taken.add(cid)
        inserts.append((cid, *row, stamp, stamp, change_seq))
        results.append(Upserted("inserted", cid))
    if updates:
        conn.executemany(_UPDATE, updates)
    if inserts:
        conn.executemany(_INSERT, inserts)
    for i in later:
        results[i] = upsert_prepared(conn, rows[i], now, change_seq)
    return [r for r in results if r is not None]


def upsert_batch(
    conn: sqlite3.Connection, cameras: Iterable[camera_pb2.Camera], now: datetime
) -> list[Upserted]:
    """Upsert many cameras in one transaction (``conn`` in autocommit mode)."""
    return upsert_prepared_batch(conn, [prepare(c) for c in cameras], now)


def upsert_prepared_batch(
    conn: sqlite3.Connection, rows: Sequence[Prepared], now: datetime
) -> list[Upserted]:
    """``upsert_batch`` of prepared cameras."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        seq = next_change_seq(conn)
        results = upsert_prepared_many(conn, rows, now, seq)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return results


def camera_from_row(center: str, row: dict[str, object]) -> camera_pb2.Camera:
    """The wire Camera of a stored row (``data``, ``camera_id``, ``create_time``, ``update_time``)."""
    camera = camera_pb2.Camera.FromString(bytes(row["data"]))  # type: ignore[call-overload]
    camera.name = f"{center}/cameras/{row['camera_id']}"
    camera.create_time.CopyFrom(_timestamp(str(row["create_time"])))
    camera.update_time.CopyFrom(_timestamp(str(row["update_time"])))
    return camera


SELECT_CAMERA = "SELECT key, camera_id, data, create_time, update_time, searchable FROM cameras"


def fetch_by_ids_sql(count: int) -> str:
    return f"{SELECT_CAMERA} WHERE camera_id IN ({', '.join('?' * count)})"


def fetch_by_keys_sql(count: int) -> str:
    return f"{SELECT_CAMERA} WHERE key IN ({', '.join('?' * count)})"


def list_sql(purpose: int, agency_code: str, after: str, limit: int) -> tuple[str, Sequence[object]]:
    """One page of ListCameras: name order is camera_id order (same center prefix) [CAM-011]."""
    where: list[str] = ["camera_id > ?"]
    params: list[object] = [after]
    if purpose:
        where.append("purpose = ?")
        params.append(purpose)
    if agency_code:
        where.append("agency_code = ?")
        params.append(agency_code)
    sql = f"{SELECT_CAMERA} WHERE {' AND '.join(where)} ORDER BY camera_id LIMIT ?"
    return sql, [*params, limit]
