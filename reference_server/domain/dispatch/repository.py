"""Dispatch rows in the store (migration 0002)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansim.v1 import dispatch_pb2

from reference_server.clock import to_rfc3339
from reference_server.domain.emergencies.repository import Reader
from reference_server.store.interface import Transaction

NON_TERMINAL = (
    dispatch_pb2.DISPATCH_STATE_PENDING,
    dispatch_pb2.DISPATCH_STATE_ACKNOWLEDGED,
    dispatch_pb2.DISPATCH_STATE_EN_ROUTE,
    dispatch_pb2.DISPATCH_STATE_ON_SCENE,
)
_NON_TERMINAL_SQL = ", ".join(str(s) for s in NON_TERMINAL)


def _time(ts: Any) -> str:
    return to_rfc3339(ts.ToDatetime(tzinfo=UTC))


def _deadline(d: dispatch_pb2.Dispatch) -> str | None:
    return _time(d.ack_deadline) if d.HasField("ack_deadline") else None


async def load(db: Reader, name: str) -> dispatch_pb2.Dispatch | None:
    row = await db.fetchone("SELECT data FROM dispatches WHERE name = ?", (name,))
    return dispatch_pb2.Dispatch.FromString(bytes(row["data"])) if row is not None else None


async def insert(tx: Transaction, d: dispatch_pb2.Dispatch) -> None:
    await tx.execute(
        "INSERT INTO dispatches"
        " (name, center, emergency, agency, mode, state, create_time, ack_deadline, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            d.name,
            d.name.split("/dispatches/")[0],
            d.emergency,
            d.agency,
            d.mode,
            d.state,
            _time(d.create_time),
            _deadline(d),
            d.SerializeToString(deterministic=True),
        ),
    )


async def save(tx: Transaction, d: dispatch_pb2.Dispatch) -> None:
    await tx.execute(
        "UPDATE dispatches SET state = ?, ack_deadline = ?, data = ? WHERE name = ?",
        (d.state, _deadline(d), d.SerializeToString(deterministic=True), d.name),
    )


async def of_emergency(db: Reader, emergency: str, *, open_only: bool = False) -> list[dispatch_pb2.Dispatch]:
    extra = f" AND state IN ({_NON_TERMINAL_SQL})" if open_only else ""
    rows = await db.fetchall(
        f"SELECT data FROM dispatches WHERE emergency = ?{extra} ORDER BY create_time, name", (emergency,)
    )
    return [dispatch_pb2.Dispatch.FromString(bytes(r["data"])) for r in rows]


async def open_in_scope(db: Reader, center: str, agency: str, mode: int) -> list[dispatch_pb2.Dispatch]:
    """Non-terminal dispatches of a subscription scope, ascending create_time then name [DSP-014]."""
    rows = await db.fetchall(
        "SELECT data FROM dispatches WHERE center = ? AND agency = ? AND mode = ?"
        f" AND state IN ({_NON_TERMINAL_SQL}) ORDER BY create_time, name",
        (center, agency, mode),
    )
    return [dispatch_pb2.Dispatch.FromString(bytes(r["data"])) for r in rows]


async def due(db: Reader, now: datetime) -> list[str]:
    rows = await db.fetchall(
        "SELECT name FROM dispatches WHERE ack_deadline IS NOT NULL AND ack_deadline <= ?", (to_rfc3339(now),)
    )
    return [r["name"] for r in rows]


async def list_page(
    db: Reader,
    center: str,
    *,
    agency: str,
    emergency: str,
    state: int,
    mode: int,
    after: tuple[str, str] | None,
    limit: int,
) -> list[tuple[str, dispatch_pb2.Dispatch]]:
    """(create_time text, dispatch) of ``center`` matching the filters, newest first then by name."""
    where = ["center = ?"]
    params: list[Any] = [center]
    for column, value in (("agency", agency), ("emergency", emergency), ("state", state), ("mode", mode)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if after is not None:
        where.append("(create_time < ? OR (create_time = ? AND name > ?))")
        params += [after[0], after[0], after[1]]
    rows = await db.fetchall(
        f"SELECT create_time, data FROM dispatches WHERE {' AND '.join(where)}"
        " ORDER BY create_time DESC, name ASC LIMIT ?",
        (*params, limit),
    )
    return [(r["create_time"], dispatch_pb2.Dispatch.FromString(bytes(r["data"]))) for r in rows]
