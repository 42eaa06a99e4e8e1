"""Mutant: writes a fresh notification stream's replay into the recipient's shared scope.

Defect: StreamNotifications without a cursor publishes the recipient's unacknowledged copies as new
events of the recipient's scope and subscribes from just before them (the reference before
1877952), so every other open stream of that recipient receives the replay again and the outbox
keeps it [GRD-011, GRD-012 broken]. The new call itself still sees a correct-looking replay.

Expected to fail: TC_GRD_015_SRV (an already open stream of the guardian gets no replay when
another one subscribes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim.v1 import guardian_pb2 as gd

import reference_server.services.guardian as guardian_service
from reference_server.domain.child_safety.common import parse
from reference_server.domain.child_safety.notifications import Notifier, stream_scope
from reference_server.domain.child_safety.replay import Replay
from reference_server.events.publisher import Event, Publisher
from reference_server.store.interface import Store

CAUGHT_BY = ("TC_GRD_015_SRV",)


async def _published_replay(store: Store, publisher: Publisher, recipient: str, notifier: Notifier) -> Replay:
    scope = stream_scope(recipient)
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT last_sequence FROM event_scopes WHERE scope = ?", (scope,))
        before = int(row["last_sequence"]) if row is not None else 0
        rows = await tx.fetchall(
            "SELECT body FROM cs_notifications WHERE recipient = ? ORDER BY created, name", (recipient,)
        )
        for r in rows:
            copy = parse(gd.Notification, r["body"])
            if notifier.unacknowledged(copy):
                item = gd.StreamNotificationsResponse(
                    replay=True, change=gd.NOTIFICATION_CHANGE_CREATED, notification=copy
                )
                await publisher.publish(tx, scope, Event.of(item, copy.mode))  # the shared scope
    return Replay([], publisher.cursor(scope, before))


def install(ctx: Any, server: Any) -> Sequence[str]:
    guardian_service.snapshot = _published_replay  # type: ignore[attr-defined]
    return []
