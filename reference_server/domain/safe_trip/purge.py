"""Retention of trip data (spec §4.2, §11.8): fixes of finished trips, and guardian text messages."""

from __future__ import annotations

from datetime import datetime

from ansim.v1 import common_pb2, safe_trip_pb2

from reference_server.clock import to_rfc3339
from reference_server.store.interface import Transaction


async def purge_trip_fixes(tx: Transaction, cutoff: datetime, *, test: bool) -> int:
    """Delete the fixes (and the last location) of trips that ended before ``cutoff``; TEST-mode
    trips when ``test``, the others otherwise [PRV-010] [PRV-011] [PRV-015]. Returns the number of
    fixes deleted."""
    op = "=" if test else "<>"
    rows = await tx.fetchall(
        "SELECT name, body FROM st_trips"
        f" WHERE active = 0 AND fixes_purged = 0 AND end_time < ? AND mode {op} ?",
        (to_rfc3339(cutoff), common_pb2.MODE_TEST),
    )
    deleted = 0
    for row in rows:
        trip = safe_trip_pb2.SafeTrip.FromString(bytes(row["body"]))
        trip.ClearField("last_location")
        deleted += await tx.execute("DELETE FROM st_fixes WHERE trip = ?", (row["name"],))
        await tx.execute(
            "UPDATE st_trips SET body = ?, fixes_purged = 1 WHERE name = ?",
            (trip.SerializeToString(deterministic=True), row["name"]),
        )
    return deleted


async def purge_live_fixes(tx: Transaction, cutoff: datetime) -> int:
    return await purge_trip_fixes(tx, cutoff, test=False)


async def purge_test_fixes(tx: Transaction, cutoff: datetime) -> int:
    return await purge_trip_fixes(tx, cutoff, test=True)


async def purge_messages(tx: Transaction, cutoff: datetime) -> int:
    """Guardian text messages older than the notifications' period."""
    return await tx.execute("DELETE FROM st_messages WHERE sent < ?", (to_rfc3339(cutoff),))
