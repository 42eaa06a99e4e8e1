"""Mirroring between a handling center and the home center (spec §17.7).

Sending (handling side): every queued event not yet applied is sent, in sequence, to the home
center until its answer says it was applied; events stay queued across restarts [FED-023].

Receiving (home side): events are applied in order, exactly once; events at or below the last
applied sequence are ignored and nothing after a gap is applied [FED-024]. Each event is applied to
the home emergency in the same transaction that raises the last applied sequence, so a crash can
never acknowledge an event that was not applied. Only centers known to
handle the emergency may mirror: the one it was forwarded to, and any that took over by a handoff
from a known one (named by a ``started`` event's ``previous_emergency`` or a TRANSFERRED event's
``transferred_to``) [FED-025].
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from ansim.v1 import error_pb2, federation_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import to_rfc3339
from reference_server.domain.federation.route_cache import RouteCache
from reference_server.domain.ports import DomainPorts
from reference_server.store.interface import Store, Transaction
from reference_server.store.sqlite import SqliteTransaction

log = logging.getLogger("ansim.federation.mirror")
BATCH = 100

#: Sends a MirrorStatusRequest to a home center, returns last_applied_sequence.
Send = Callable[[str, federation_pb2.MirrorStatusRequest], Awaitable[int]]


def center_of(resource: str) -> str:
    """``centers/x/emergencies/y`` → ``centers/x``."""
    return "/".join(resource.split("/")[:2])


async def send_pending(store: Store, send: Send, new_request_id: Callable[[], str]) -> int:
    """One pass over every handling emergency with unapplied events; returns how many were applied."""
    rows = await store.fetchall(
        "SELECT handling_emergency, MIN(sequence) AS first FROM fed_mirror_out WHERE applied = 0"
        " GROUP BY handling_emergency"
    )
    applied = 0
    for row in rows:
        events = await store.fetchall(
            "SELECT * FROM fed_mirror_out WHERE handling_emergency = ? AND sequence >= ? ORDER BY sequence"
            " LIMIT ?",
            (row["handling_emergency"], row["first"], BATCH),
        )
        if not events:
            continue
        head = events[0]
        request = federation_pb2.MirrorStatusRequest(
            request_id=new_request_id(),
            home_emergency=head["home_emergency"],
            handling_emergency=head["handling_emergency"],
            mode=head["mode"],
            events=[federation_pb2.MirrorEvent.FromString(e["event"]) for e in events],
        )
        try:
            last = await send(head["home_center"], request)
        except Exception as error:  # retried on the next pass
            log.info("mirror to %s not delivered: %s", head["home_center"], type(error).__name__)
            continue
        async with store.transaction() as tx:
            applied += await tx.execute(
                "UPDATE fed_mirror_out SET applied = 1 WHERE handling_emergency = ? AND sequence <= ?",
                (head["handling_emergency"], last),
            )
    return applied


class MirrorInbox:
    """The home side of MirrorStatus."""

    def __init__(self, store: Store, ports: DomainPorts, routes: RouteCache) -> None:
        self._store = store
        self._ports = ports
        self._routes = routes  # told of every write of a route's row

    async def known(self, tx: Transaction, home: str, handling: str) -> int | None:
        row = await tx.fetchone(
            "SELECT last_applied FROM fed_mirror_in WHERE home_emergency = ? AND handling_emergency = ?",
            (home, handling),
        )
        return int(row["last_applied"]) if row else None

    async def _authorized(self, tx: Transaction, request: federation_pb2.MirrorStatusRequest) -> int:
        last = await self.known(tx, request.home_emergency, request.handling_emergency)
        if last is not None:
            return last
        first = request.events[0] if request.events else None
        previous = (
            first.started.previous_emergency if first and first.WhichOneof("event") == "started" else ""
        )
        if previous and await self.known(tx, request.home_emergency, previous) is not None:
            await self.register(tx, request.home_emergency, request.handling_emergency)
            return 0
        raise AnsimError(
            error_pb2.ERROR_REASON_NOT_OWNER, "the caller is not a known handling center of this emergency"
        )

    async def register(self, tx: Transaction, home: str, handling: str) -> None:
        await tx.execute(
            "INSERT OR IGNORE INTO fed_mirror_in (home_emergency, handling_emergency, last_applied)"
            " VALUES (?, ?, 0)",
            (home, handling),
        )

    async def apply(
        self,
        tx: Transaction,
        caller: str,
        request: federation_pb2.MirrorStatusRequest,
        route_mode: int | None,
    ) -> tuple[int, list[federation_pb2.MirrorEvent]]:
        """Apply the request's events in order; return (last applied, the events newly applied)."""
        if center_of(request.handling_emergency) != caller:
            raise AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "handling_emergency is not the caller's")
        if route_mode is None:
            raise AnsimError(
                error_pb2.ERROR_REASON_NOT_OWNER, "no emergency here was forwarded to the caller"
            )
        last = await self._authorized(tx, request)
        if route_mode != request.mode:
            raise AnsimError(
                error_pb2.ERROR_REASON_MODE_MISMATCH, "the mode differs from the home emergency's"
            )
        applied: list[federation_pb2.MirrorEvent] = []
        for event in sorted(request.events, key=lambda e: e.sequence):
            if event.sequence <= last:
                continue
            if event.sequence != last + 1:
                break  # a gap: apply nothing after it
            await tx.execute(
                "INSERT OR IGNORE INTO fed_mirror_log (home_emergency, handling_emergency, sequence, event,"
                " applied_time) VALUES (?, ?, ?, ?, ?)",
                (
                    request.home_emergency,
                    request.handling_emergency,
                    event.sequence,
                    event.SerializeToString(),
                    to_rfc3339(tx.now),
                ),
            )
            await self._follow(tx, request, event)
            if self._ports.forwarded is not None:  # applied in the transaction that acknowledges it
                await self._ports.forwarded.apply_mirror(
                    cast(SqliteTransaction, tx), request.home_emergency, request.handling_emergency, event
                )
            last = event.sequence
            applied.append(event)
        await tx.execute(
            "UPDATE fed_mirror_in SET last_applied = ? WHERE home_emergency = ? AND handling_emergency = ?",
            (last, request.home_emergency, request.handling_emergency),
        )
        if applied:
            await tx.append_audit(
                caller, "federation.mirror_applied", request.home_emergency, request.handling_emergency, "ok"
            )
        return last, applied

    async def _follow(
        self, tx: Transaction, request: federation_pb2.MirrorStatusRequest, event: federation_pb2.MirrorEvent
    ) -> None:
        """Keep the route's handling emergency current: a ``started`` makes the caller the handler;
        a TRANSFERRED names the next one, which becomes known."""
        kind = event.WhichOneof("event")
        if kind == "started":
            await tx.execute(
                "UPDATE fed_routes SET status = 'FORWARDED', handling_center = ?, handling_emergency = ?,"
                " update_time = ? WHERE home_emergency = ?",
                (
                    center_of(request.handling_emergency),
                    request.handling_emergency,
                    to_rfc3339(tx.now),
                    request.home_emergency,
                ),
            )
            self._routes.changed(tx, request.home_emergency)
        elif kind == "state_change" and event.state_change.transferred_to:
            await self.register(tx, request.home_emergency, event.state_change.transferred_to)
