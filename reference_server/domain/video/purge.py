"""Retention purges of the video area (spec §4.2), run by the center's retention job.

* ``grants``: a grant (with its tokens) is deleted once it ended longer ago than the period.
* ``access_records``: records older than the period are destroyed oldest first, one at a time,
  and the last destroyed record's ``(sequence, record_hash)`` becomes the chain anchor from which
  the rest still verifies [AUD-003, VID-021, PRV-012].
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from reference_server.clock import to_rfc3339
from reference_server.store.sqlite import SqliteTransaction


async def purge_grants(tx: SqliteTransaction, cutoff: datetime) -> int:
    return await tx.execute(
        "DELETE FROM video_grants WHERE end_time IS NOT NULL AND end_time < ?", (to_rfc3339(cutoff),)
    )


async def purge_access_records(tx: SqliteTransaction, cutoff: datetime) -> int:
    limit = to_rfc3339(cutoff)

    def purge(conn: sqlite3.Connection) -> int:
        removed = 0
        while True:
            oldest = conn.execute(
                "SELECT sequence, record_hash, record_time FROM access_records ORDER BY sequence LIMIT 1"
            ).fetchone()
            if oldest is None or oldest[2] >= limit:
                return removed
            conn.execute("DELETE FROM access_records WHERE sequence = ?", (oldest[0],))
            conn.execute(
                "UPDATE access_record_anchor SET sequence = ?, record_hash = ? WHERE id = 1",
                (oldest[0], oldest[1]),
            )
            removed += 1

    return await tx.run(purge)
