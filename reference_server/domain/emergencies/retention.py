"""Retention of the emergency area's data (spec §4.2) [PRV-010] [PRV-011] [PRV-015].

Two purges, registered with the center's retention job by :func:`register`:

* **location traces** (``location_traces``, and ``test_location_traces`` for TEST-mode emergencies):
  once an emergency has been terminal for the period, its fixes are deleted and every copy of them
  the center could still return is scrubbed: ``last_location``, ``location_summary.recent_fixes`` and
  ``civic_address`` of the emergency (the operators' and a frozen reporter's view), the summary
  location, address and origin of its dispatches, the stored responses of idempotent emergency and
  dispatch calls, the dispatch events of the subscription scopes, and the emergency's own event
  history (deleted; a resume cursor into it is then CURSOR_EXPIRED and a new watch starts with the
  scrubbed snapshot). The consented profile goes with them: the table of §4.2 keeps the emergency
  resource "without location, without profile". Counts, times and the path length stay.
* **emergencies**: once an emergency has been terminal for the period, the resource itself goes,
  with its dispatches and event scopes. The newest row by rowid is kept until a newer one exists,
  so that SQLite never hands its rowid out again (statistics counts emergencies by rowid).

An emergency that is active for operators (e.g. after a duress cancel) is never purged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ansim.v1 import common_pb2, dispatch_pb2, emergency_pb2
from google.protobuf.message import DecodeError

from reference_server.clock import to_rfc3339
from reference_server.domain.emergencies import events, states
from reference_server.store.interface import Transaction

if TYPE_CHECKING:
    from reference_server.context import ServerContext

E = emergency_pb2
_TERMINAL = tuple(sorted(states.TERMINAL))
_IN_TERMINAL = f"state IN ({', '.join('?' * len(_TERMINAL))})"


def _ended_before(e: emergency_pb2.Emergency, cutoff: datetime) -> bool:
    return e.HasField("end_time") and e.end_time.ToDatetime(tzinfo=UTC) < cutoff


def _scrub_emergency(e: emergency_pb2.Emergency) -> None:
    e.ClearField("last_location")
    del e.location_summary.recent_fixes[:]
    e.ClearField("civic_address")
    e.ClearField("profile")


def _scrub_dispatch(d: dispatch_pb2.Dispatch) -> None:
    d.summary.ClearField("location")
    d.summary.ClearField("address")
    d.ClearField("origin")


async def _ended(tx: Transaction, cutoff: datetime, where: str, params: tuple[object, ...]) -> list[str]:
    """Names of terminal emergencies that ended before ``cutoff`` and match ``where``."""
    rows = await tx.fetchall(
        f"SELECT name, data FROM emergencies WHERE {_IN_TERMINAL} AND create_time < ? AND {where}",
        (*_TERMINAL, to_rfc3339(cutoff), *params),
    )
    return [str(r["name"]) for r in rows if _ended_before(E.Emergency.FromString(bytes(r["data"])), cutoff)]


async def _drop_history(tx: Transaction, name: str, *, forget_scopes: bool) -> None:
    """Delete the emergency's watch history; a cursor into it is then expired (or, once the
    scopes are forgotten with the emergency, the emergency is not found)."""
    for scope in (events.reporter_scope(name), events.staff_scope(name)):
        await tx.execute("DELETE FROM events WHERE scope = ?", (scope,))
        if forget_scopes:
            await tx.execute("DELETE FROM event_scopes WHERE scope = ?", (scope,))
        else:
            await tx.execute(
                "UPDATE event_scopes SET pruned_through = last_sequence WHERE scope = ?", (scope,)
            )


async def _scrub_dispatches(tx: Transaction, emergencies: Iterable[str], since: str) -> set[str]:
    """Scrub the emergencies' dispatches and their copies in subscription events created since
    ``since``; the dispatches' names."""
    names = set()
    for emergency in emergencies:
        rows = await tx.fetchall("SELECT name, data FROM dispatches WHERE emergency = ?", (emergency,))
        for row in rows:
            d = dispatch_pb2.Dispatch.FromString(bytes(row["data"]))
            _scrub_dispatch(d)
            names.add(d.name)
            await tx.execute(
                "UPDATE dispatches SET data = ? WHERE name = ?",
                (d.SerializeToString(deterministic=True), d.name),
            )
    if not names:
        return names
    # a change fanned out to several subscriptions shares one payload (0011_shared_event_payloads)
    rows = await tx.fetchall(
        "SELECT e.scope, e.sequence, e.payload_id, COALESCE(p.payload, e.payload) AS payload"
        " FROM events e LEFT JOIN event_payloads p ON p.id = e.payload_id"
        " WHERE e.scope LIKE ? AND e.created >= ?",
        ("%/dispatchSubscriptions/%", since),
    )
    scrubbed: set[int] = set()
    for row in rows:
        shared = row["payload_id"]
        if shared in scrubbed:
            continue
        try:
            event = dispatch_pb2.DispatchEvent.FromString(bytes(row["payload"]))
        except DecodeError:
            continue
        if event.dispatch.name not in names:
            continue
        _scrub_dispatch(event.dispatch)
        payload = event.SerializeToString(deterministic=True)
        if shared is None:
            await tx.execute(
                "UPDATE events SET payload = ? WHERE scope = ? AND sequence = ?",
                (payload, row["scope"], row["sequence"]),
            )
        else:
            scrubbed.add(shared)
            await tx.execute("UPDATE event_payloads SET payload = ? WHERE id = ?", (payload, shared))
    return names


async def _scrub_replies(tx: Transaction, emergencies: set[str], dispatches: set[str], since: str) -> None:
    """Stored responses of idempotent calls about the emergencies (recorded since ``since``) are
    replayed on a retry: scrub them."""
    rows = await tx.fetchall(
        "SELECT caller, method, request_id, response FROM idempotency WHERE created >= ? AND"
        " (method LIKE '/ansim.v1.EmergencyService/%' OR method LIKE '/ansim.v1.DispatchService/%')",
        (since,),
    )
    for row in rows:
        payload = bytes(row["response"])
        try:
            if str(row["method"]).startswith("/ansim.v1.EmergencyService/"):
                e = E.Emergency.FromString(payload)
                if e.name not in emergencies:
                    continue
                _scrub_emergency(e)
                payload = e.SerializeToString()
            else:
                d = dispatch_pb2.Dispatch.FromString(payload)
                if d.name not in dispatches:
                    continue
                _scrub_dispatch(d)
                payload = d.SerializeToString()
        except DecodeError:
            continue
        await tx.execute(
            "UPDATE idempotency SET response = ? WHERE caller = ? AND method = ? AND request_id = ?",
            (payload, row["caller"], row["method"], row["request_id"]),
        )


async def purge_location_traces(tx: Transaction, cutoff: datetime, *, test: bool) -> int:
    """Delete the fixes of emergencies terminal since before ``cutoff`` (TEST-mode ones when
    ``test``, the others otherwise) and scrub every copy (module docstring); the number of fixes."""
    op = "=" if test else "<>"
    names = await _ended(
        tx,
        cutoff,
        f"mode {op} ? AND EXISTS (SELECT 1 FROM emergency_fixes f WHERE f.emergency = emergencies.name)",
        (common_pb2.MODE_TEST,),
    )
    deleted = 0
    since = ""
    for name in names:
        row = await tx.fetchone(
            "SELECT data, reporter_frozen, create_time FROM emergencies WHERE name = ?", (name,)
        )
        if row is None:
            continue
        e = E.Emergency.FromString(bytes(row["data"]))
        _scrub_emergency(e)
        frozen = None
        if row["reporter_frozen"] is not None:
            view = E.Emergency.FromString(bytes(row["reporter_frozen"]))
            _scrub_emergency(view)
            frozen = view.SerializeToString(deterministic=True)
        await tx.execute(
            "UPDATE emergencies SET data = ?, reporter_frozen = ? WHERE name = ?",
            (e.SerializeToString(deterministic=True), frozen, name),
        )
        deleted += await tx.execute("DELETE FROM emergency_fixes WHERE emergency = ?", (name,))
        await _drop_history(tx, name, forget_scopes=False)
        since = min(since or str(row["create_time"]), str(row["create_time"]))
    if names:  # one pass over the copies for all of them
        dispatches = await _scrub_dispatches(tx, names, since)
        await _scrub_replies(tx, set(names), dispatches, since)
    return deleted


async def purge_live_traces(tx: Transaction, cutoff: datetime) -> int:
    return await purge_location_traces(tx, cutoff, test=False)


async def purge_test_traces(tx: Transaction, cutoff: datetime) -> int:
    return await purge_location_traces(tx, cutoff, test=True)


async def purge_emergencies(tx: Transaction, cutoff: datetime) -> int:
    """Delete emergency resources terminal since before ``cutoff`` with their fixes, dispatches and
    event scopes; the newest row by rowid stays (module docstring). Returns how many went."""
    newest = await tx.fetchone("SELECT MAX(rowid) AS top FROM emergencies")
    top = int(newest["top"]) if newest is not None and newest["top"] is not None else 0
    names = await _ended(tx, cutoff, "rowid < ?", (top,))
    for name in names:
        await tx.execute("DELETE FROM emergency_fixes WHERE emergency = ?", (name,))
        await tx.execute("DELETE FROM dispatches WHERE emergency = ?", (name,))
        await _drop_history(tx, name, forget_scopes=True)
        await tx.execute("DELETE FROM emergencies WHERE name = ?", (name,))
    return len(names)


def register(ctx: ServerContext) -> None:
    """Register the area's purges with the center's retention job."""
    from reference_server.domain.retention import retention_registry

    registry = retention_registry(ctx)
    registry.register_purge("location_traces", purge_live_traces)
    registry.register_purge("test_location_traces", purge_test_traces)
    registry.register_purge("emergencies", purge_emergencies)
