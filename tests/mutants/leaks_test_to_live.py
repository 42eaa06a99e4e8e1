"""Mutant: dispatches a TEST emergency to LIVE subscribers.

Defect: the dispatch fan-out selects the agency's subscription scopes of the dispatch's mode AND
the LIVE ones, so a TEST dispatch (still marked MODE_TEST) reaches LIVE SubscribeDispatches
streams, where a real unit would respond to it [DSP-015, GEN-011 broken]. EXERCISE scopes are
still isolated, which is why the EXERCISE-only mode-isolation case TC_DSP_004_SRV cannot see it.

Expected to fail: TC_DSP_016_SRV (a TEST dispatch never reaches a LIVE subscription).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ansim.v1 import common_pb2, dispatch_pb2

from reference_server.clock import to_rfc3339
from reference_server.domain.dispatch.subscriptions import EVENT_TYPE, Subscriptions, scope_of
from reference_server.domain.emergencies.events import timestamp
from reference_server.events.publisher import Event
from reference_server.store.interface import Transaction

CAUGHT_BY = ("TC_DSP_016_SRV",)


async def _fan_out_also_to_live(
    self: Subscriptions, tx: Transaction, d: dispatch_pb2.Dispatch, type: int, now: datetime
) -> None:
    """Subscriptions.fan_out with one change: ``mode IN (?, LIVE)`` instead of ``mode = ?``."""
    center = d.name.split("/dispatches/")[0]
    rows = await tx.fetchall(
        "SELECT id, filter, expires FROM dispatch_subscriptions"
        " WHERE parent = ? AND agency = ? AND mode IN (?, ?)",
        (center, d.agency, d.mode, common_pb2.MODE_LIVE),
    )
    live = to_rfc3339(now)
    event = dispatch_pb2.DispatchEvent(type=type, dispatch=d, event_time=timestamp(now))  # type: ignore[arg-type]
    for row in rows:
        if row["expires"] <= live and row["id"] not in self._connected:
            continue
        if self._filter(row["filter"]).matches(d):
            await self._publisher.publish(
                tx, scope_of(center, row["id"]), Event.of(event, d.mode, EVENT_TYPE)
            )


def install(ctx: Any, server: Any) -> Sequence[str]:
    Subscriptions.fan_out = _fan_out_also_to_live  # type: ignore[method-assign]
    return []
