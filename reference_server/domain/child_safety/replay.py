"""The replay of a fresh notification stream (spec §15, GRD-011, §2.4 STM-001/STM-002).

A recipient's streams share one subscription scope (a guardian on several devices, the operators'
copy read by many operators), so the replay is built for the new call only and never written into
the scope: writing it there would send it again to every other open stream and keep it as history.

The scope's position and the unacknowledged copies are read in one transaction (which holds the
store's write lock), so the replay is the state as of that position: the call then subscribes
from the position's cursor and every change published after the snapshot reaches it live, none twice.

Replayed items carry the cursor of that position — resuming from any of them continues with the
live events after it — and the sequences that end at the position's sequence, one apart, so the
first live event is exactly one more than the last replayed item (GRD-011).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansim.v1 import guardian_pb2 as gd

from reference_server.domain.child_safety.common import parse
from reference_server.domain.child_safety.notifications import Notifier, stream_scope
from reference_server.events.publisher import Publisher
from reference_server.store.interface import Store


@dataclass(frozen=True)
class Replay:
    """What a fresh stream sends first, and the cursor its live part continues after."""

    items: list[gd.StreamNotificationsResponse]
    cursor: str


async def snapshot(store: Store, publisher: Publisher, recipient: str, notifier: Notifier) -> Replay:
    """The recipient's unacknowledged WARNING and EMERGENCY copies, oldest first, as replay items
    [GRD-011], and the cursor of the scope position they describe."""
    scope = stream_scope(recipient)
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT last_sequence FROM event_scopes WHERE scope = ?", (scope,))
        position = int(row["last_sequence"]) if row is not None else 0
        rows = await tx.fetchall(
            "SELECT body FROM cs_notifications WHERE recipient = ? ORDER BY created, name", (recipient,)
        )
    copies = [copy for r in rows if notifier.unacknowledged(copy := parse(gd.Notification, r["body"]))]
    cursor = publisher.cursor(scope, position)
    # Each copy's CREATED is an event of the scope, so position >= len(copies); max() keeps the
    # sequence >= 1 should that ever not hold.
    first = max(1, position - len(copies) + 1)
    items = [
        gd.StreamNotificationsResponse(
            cursor=cursor,
            sequence=first + i,
            replay=True,
            change=gd.NOTIFICATION_CHANGE_CREATED,
            notification=copy,
        )
        for i, copy in enumerate(copies)
    ]
    return Replay(items, cursor)
