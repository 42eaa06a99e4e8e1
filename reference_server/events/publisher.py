"""THE publisher: every event of the center goes out through here.

Publishing appends the event to the outbox (the ``events`` table) inside the caller's transaction,
so it exists exactly when the domain write it describes exists; after that transaction commits, it
is handed to the in-memory subscribers of its scope (in commit order, without ever blocking).

Subscribing yields the persisted events after the resume cursor, then live ones, with no gap and no
duplicate at the switch-over: the subscriber is registered (buffering live events) *before* the
history is read, and live events already delivered from history are skipped by sequence. Without a
cursor only events published after the call are delivered (services replay active state
themselves). Each subscriber has a bounded queue; one that falls behind while live is dropped with
UNAVAILABLE / SERVER_UNAVAILABLE and resumes with its last cursor (delivery is at least once).

Servicer sketch::

    async def SubscribeDispatches(self, request, context):
        scope = f"{request.agency}/dispatches"
        async with contextlib.aclosing(self.ctx.publisher.subscribe(scope, request.resume_cursor)) as events:
            async for event in events:
                yield to_message(event)   # event.cursor, event.sequence, event.payload ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ansim.v1 import error_pb2
from google.protobuf.message import Message

from ansim_sdk.errors import AnsimError
from reference_server.events.cursor import CursorCodec
from reference_server.interceptors.metrics import DROPPED_SUBSCRIBERS, STREAM_SUBSCRIBERS
from reference_server.store.interface import Store, StoredEvent, Transaction

DEFAULT_QUEUE_SIZE = 1000
PAGE_SIZE = 500


@dataclass(frozen=True)
class Event:
    """An event to publish: its type, serialized payload and mode."""

    type: str
    payload: bytes
    mode: int

    @classmethod
    def of(cls, message: Message, mode: int, type: str | None = None) -> Event:
        """An event carrying ``message``; its type defaults to the message's full name."""
        return cls(type or message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True), mode)


@dataclass(frozen=True)
class DeliveredEvent:
    """An event as a subscriber receives it."""

    scope: str
    sequence: int
    type: str
    payload: bytes
    mode: int
    created: datetime
    #: Opaque cursor to resume after this event.
    cursor: str


class _Closed:
    pass


_CLOSED = _Closed()


class _Subscriber:
    def __init__(self, scope: str, queue_size: int) -> None:
        self.scope = scope
        self.queue: asyncio.Queue[StoredEvent | _Closed] = asyncio.Queue(queue_size)
        self.catching_up = True
        self.overflowed = False
        self.dropped = False
        self.closed = False


def stream_label(scope: str) -> str:
    """Metric label of a scope: its last segment (a collection id, never a resource id)."""
    return scope.rstrip("/").rsplit("/", 1)[-1]


class Publisher:
    def __init__(
        self,
        store: Store,
        cursor_key: bytes,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        retention: timedelta | None = None,
    ) -> None:
        self._store = store
        self._codec = CursorCodec(cursor_key)
        self._queue_size = queue_size
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._last_live: dict[str, DeliveredEvent] = {}
        self._closed = False
        self.retention = retention

    # --- publishing -------------------------------------------------------------------------------

    async def publish(self, tx: Transaction, scope: str, event: Event) -> StoredEvent:
        """Append ``event`` to the outbox in ``tx``; subscribers get it once ``tx`` commits."""
        stored = await tx.append_event(scope, event.type, event.payload, event.mode)
        tx.on_commit(lambda: self._fan_out(stored))
        return stored

    async def publish_many(self, tx: Transaction, scopes: Sequence[str], event: Event) -> list[StoredEvent]:
        """:meth:`publish` of the same ``event`` to each of ``scopes``: its payload is serialised once
        and its outbox rows are appended in one batch (a dispatch change for every subscription)."""
        if not scopes:
            return []
        stored = await tx.append_events(scopes, event.type, event.payload, event.mode)

        def fan_out() -> None:
            for one in stored:
                self._fan_out(one)

        tx.on_commit(fan_out)
        return stored

    def _fan_out(self, event: StoredEvent) -> None:
        for sub in list(self._subscribers.get(event.scope, ())):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                if sub.catching_up:
                    sub.overflowed = True  # history is re-read from the store; nothing is lost
                else:
                    sub.dropped = True
                    self._unregister(sub)
                    DROPPED_SUBSCRIBERS.labels(stream=stream_label(sub.scope)).inc()

    # --- subscribing ------------------------------------------------------------------------------

    def cursor(self, scope: str, sequence: int) -> str:
        return self._codec.encode(scope, sequence)

    def _deliver_live(self, event: StoredEvent) -> DeliveredEvent:
        """:meth:`_deliver` of a live event, made once for all the subscribers of its scope (a
        recipient's streams on several devices share a scope, so they share its cursor too)."""
        last = self._last_live.get(event.scope)
        if last is None or last.sequence != event.sequence:
            last = self._last_live[event.scope] = self._deliver(event)
        return last

    def _deliver(self, event: StoredEvent) -> DeliveredEvent:
        return DeliveredEvent(
            event.scope,
            event.sequence,
            event.type,
            event.payload,
            event.mode,
            event.created,
            self._codec.encode(event.scope, event.sequence),
        )

    async def subscribe(self, scope: str, resume_cursor: str = "") -> AsyncGenerator[DeliveredEvent, None]:
        """Events of ``scope`` after ``resume_cursor`` (or from now), then live, until the publisher
        closes. AnsimError CURSOR_INVALID / CURSOR_EXPIRED for a bad cursor; SERVER_UNAVAILABLE when
        dropped for being slow or when the center shuts down before the subscription starts."""
        if self._closed:
            raise AnsimError(error_pb2.ERROR_REASON_SERVER_UNAVAILABLE, "the center is shutting down")
        after = self._codec.decode(scope, resume_cursor) if resume_cursor else None
        sub = self._register(scope)
        try:
            if after is not None:
                await self._check_retained(scope, after)
                async for event in self._history(sub, after):
                    after = event.sequence
                    yield self._deliver(event)
            sub.catching_up = False
            while True:
                if sub.dropped:
                    raise AnsimError(
                        error_pb2.ERROR_REASON_SERVER_UNAVAILABLE,
                        "the subscriber fell behind and was dropped; resubscribe with the last cursor",
                    )
                item = await sub.queue.get()
                if isinstance(item, _Closed):
                    return
                if after is not None and item.sequence <= after:
                    continue  # already delivered from history
                if after is not None and item.sequence > after + 1:
                    for missing in await self._store.events_after(scope, after, item.sequence - after - 1):
                        yield self._deliver(missing)
                after = item.sequence
                yield self._deliver_live(item)
        finally:
            self._unregister(sub)

    async def _check_retained(self, scope: str, after: int) -> None:
        pruned_through, last = await self._store.event_bounds(scope)
        if after > last:
            raise AnsimError(
                error_pb2.ERROR_REASON_CURSOR_INVALID, "the resume cursor is ahead of this stream"
            )
        if after < pruned_through:
            raise AnsimError(
                error_pb2.ERROR_REASON_CURSOR_EXPIRED,
                "events after this cursor are no longer retained; resubscribe without a cursor",
            )

    async def _history(self, sub: _Subscriber, after: int) -> AsyncIterator[StoredEvent]:
        """Persisted events after ``after`` until caught up with the live queue."""
        while True:
            page = await self._store.events_after(sub.scope, after, PAGE_SIZE)
            for event in page:
                after = event.sequence
                yield event
            if len(page) == PAGE_SIZE:
                continue
            if sub.overflowed:
                # Live events were lost from the queue while reading history: they are all in the
                # store, so drop the queue's content and read on from the store.
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.overflowed = False
                continue
            return  # no await between this check and the caller switching to live

    def _register(self, scope: str) -> _Subscriber:
        sub = _Subscriber(scope, self._queue_size)
        self._subscribers.setdefault(scope, set()).add(sub)
        STREAM_SUBSCRIBERS.labels(stream=stream_label(scope)).inc()
        return sub

    def _unregister(self, sub: _Subscriber) -> None:
        subs = self._subscribers.get(sub.scope)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.scope]
                self._last_live.pop(sub.scope, None)
            STREAM_SUBSCRIBERS.labels(stream=stream_label(sub.scope)).dec()

    def subscriber_count(self, scope: str | None = None) -> int:
        if scope is not None:
            return len(self._subscribers.get(scope, ()))
        return sum(len(s) for s in self._subscribers.values())

    async def close(self) -> None:
        """End every subscription cleanly (their streams finish with OK) and refuse new ones."""
        self._closed = True
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub.closed = True
                while True:
                    try:
                        sub.queue.put_nowait(_CLOSED)
                        break
                    except asyncio.QueueFull:
                        sub.queue.get_nowait()  # make room: the stream ends anyway, resumable by cursor
        await asyncio.sleep(0)

    async def prune(self, now: datetime) -> int:
        """Delete events older than the retention period (no-op without one)."""
        if self.retention is None:
            return 0
        return await self._store.prune_events(now - self.retention)
