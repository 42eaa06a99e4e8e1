"""Dispatch subscription scopes (spec §13.4): replay, fan-out, resumption.

A subscription started without a cursor is a new *scope*: a row in ``dispatch_subscriptions`` and
an outbox scope ``{parent}/dispatchSubscriptions/{id}/dispatches`` whose sequence starts at 1. Its
replay (SNAPSHOT per open dispatch, then REPLAY_COMPLETE) is written in the transaction that creates
it, and from then on every change of a matching dispatch is appended to it in the transaction of the
change, so the scope is gap-free and resumable from any of its cursors, replay included [DSP-013,
DSP-014, DSP-021]. The mode is part of the scope, so a LIVE scope never sees TEST or EXERCISE
dispatches [DSP-015, GEN-011]. A scope receives changes while it is connected and for 24 hours
after it was last used [STM-004]; a cursor of a scope past that is CURSOR_EXPIRED.

The wire cursor is ``{id}.{outbox cursor}``: the outbox cursor is HMAC-bound to the scope, so an
edited id is CURSOR_INVALID.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ansim.v1 import common_pb2, dispatch_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock, from_rfc3339, to_rfc3339
from reference_server.domain.dispatch import repository
from reference_server.domain.emergencies.events import timestamp
from reference_server.domain.emergencies.geo import in_area
from reference_server.events.publisher import Event, Publisher
from reference_server.events.wire import with_position
from reference_server.store.interface import Transaction
from reference_server.store.sqlite import SqliteStore

SCOPE_LIFETIME = timedelta(hours=24)
EVENT_TYPE = "ansim.v1.DispatchEvent"
D = dispatch_pb2


def scope_of(parent: str, subscription: str) -> str:
    return f"{parent}/dispatchSubscriptions/{subscription}/dispatches"


def canonical_filter(codes: list[str], area: common_pb2.Area | None) -> str:
    area_hex = area.SerializeToString(deterministic=True).hex() if area is not None else ""
    return json.dumps([sorted(codes), area_hex], separators=(",", ":"))


@dataclass(frozen=True)
class Filter:
    codes: frozenset[str]
    area: common_pb2.Area | None

    @classmethod
    def parse(cls, text: str) -> Filter:
        codes, area_hex = json.loads(text)
        area = common_pb2.Area.FromString(bytes.fromhex(area_hex)) if area_hex else None
        return cls(frozenset(codes), area)

    def matches(self, d: dispatch_pb2.Dispatch) -> bool:
        """[DSP-016] every dispatch without a filter; else by region code or origin in the area."""
        if not self.codes and self.area is None:
            return True
        if self.codes and d.region.legal_dong_sigungu_code in self.codes:
            return True
        return self.area is not None and d.HasField("origin") and in_area(d.origin, self.area)


class Subscriptions:
    def __init__(self, store: SqliteStore, publisher: Publisher, clock: Clock) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._connected: Counter[str] = Counter()
        self._filters: dict[str, Filter] = {}

    def _filter(self, text: str) -> Filter:
        found = self._filters.get(text)
        if found is None:
            found = self._filters[text] = Filter.parse(text)
        return found

    async def fan_out(self, tx: Transaction, d: dispatch_pb2.Dispatch, type: int, now: datetime) -> None:
        """Append the change to every scope it belongs to (inside the change's transaction)."""
        center = d.name.split("/dispatches/")[0]
        rows = await tx.fetchall(
            "SELECT id, filter, expires FROM dispatch_subscriptions"
            " WHERE parent = ? AND agency = ? AND mode = ?",
            (center, d.agency, d.mode),
        )
        live = to_rfc3339(now)
        scopes = [
            scope_of(center, row["id"])
            for row in rows
            if (row["expires"] > live or row["id"] in self._connected)
            and self._filter(row["filter"]).matches(d)
        ]
        if scopes:  # one payload for every scope: the event is the same, only its cursor differs
            event = D.DispatchEvent(type=type, dispatch=d, event_time=timestamp(now))  # type: ignore[arg-type]
            await self._publisher.publish_many(tx, scopes, Event.of(event, d.mode, EVENT_TYPE))

    async def _open(self, parent: str, agency: str, mode: int, filter_text: str) -> str:
        """A new scope with its replay; returns its id."""
        subscription = secrets.token_hex(8)
        flt = self._filter(filter_text)
        async with self._store.transaction() as tx:
            now = tx.now
            await tx.execute(
                "INSERT INTO dispatch_subscriptions (id, parent, agency, mode, filter, created, expires)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    subscription,
                    parent,
                    agency,
                    mode,
                    filter_text,
                    to_rfc3339(now),
                    to_rfc3339(now + SCOPE_LIFETIME),
                ),
            )
            scope = scope_of(parent, subscription)
            for d in await repository.open_in_scope(tx, parent, agency, mode):
                if flt.matches(d):
                    snapshot = D.DispatchEvent(
                        type=D.DISPATCH_EVENT_TYPE_SNAPSHOT,
                        dispatch=d,
                        replay=True,
                        event_time=timestamp(now),
                    )
                    await self._publisher.publish(tx, scope, Event.of(snapshot, mode, EVENT_TYPE))
            done = D.DispatchEvent(
                type=D.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE, replay=True, event_time=timestamp(now)
            )
            await self._publisher.publish(tx, scope, Event.of(done, mode, EVENT_TYPE))
        return subscription

    async def _resume(
        self, parent: str, agency: str, mode: int, filter_text: str, cursor: str
    ) -> tuple[str, str]:
        subscription, _, inner = cursor.partition(".")
        invalid = AnsimError(
            error_pb2.ERROR_REASON_CURSOR_INVALID,
            "resume_cursor was not issued by this center for this parent, agency, mode and filter",
        )
        if not subscription or not inner:
            raise invalid
        row = await self._store.fetchone(
            "SELECT parent, agency, mode, filter, expires FROM dispatch_subscriptions WHERE id = ?",
            (subscription,),
        )
        if row is None or (row["parent"], row["agency"], row["mode"], row["filter"]) != (
            parent,
            agency,
            mode,
            filter_text,
        ):
            raise invalid
        if from_rfc3339(row["expires"]) <= self._clock.now() and subscription not in self._connected:
            raise AnsimError(
                error_pb2.ERROR_REASON_CURSOR_EXPIRED,
                "this subscription's history is no longer retained; subscribe again without a cursor",
            )
        return subscription, inner

    async def _touch(self, subscription: str) -> None:
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE dispatch_subscriptions SET expires = ? WHERE id = ?",
                (to_rfc3339(tx.now + SCOPE_LIFETIME), subscription),
            )

    async def refresh_connected(self) -> None:
        """Keep connected scopes from expiring (called now and then by the timer)."""
        for subscription in list(self._connected):
            await self._touch(subscription)

    async def stream(
        self, parent: str, agency: str, mode: int, filter_text: str, resume_cursor: str
    ) -> AsyncIterator[bytes]:
        """The events of a new scope (replay first) or of a resumed one after its cursor, each a
        serialised DispatchEvent: the stored payload with the stream's cursor and sequence."""
        if resume_cursor:
            subscription, inner = await self._resume(parent, agency, mode, filter_text, resume_cursor)
            await self._touch(subscription)
        else:
            subscription = await self._open(parent, agency, mode, filter_text)
            inner = self._publisher.cursor(scope_of(parent, subscription), 0)
        self._connected[subscription] += 1
        events = self._publisher.subscribe(scope_of(parent, subscription), inner)
        try:
            prefix = f"{subscription}."
            async for delivered in events:
                yield with_position(delivered.payload, prefix + delivered.cursor, delivered.sequence)
        finally:
            await events.aclose()
            self._connected[subscription] -= 1
            if self._connected[subscription] <= 0:
                del self._connected[subscription]
            with contextlib.suppress(AnsimError):  # the store is closing: the scope keeps its expiry
                await self._touch(subscription)
