"""The one publisher: outbox within the transaction, resume without gap or duplicate, cursors,
retention, slow subscribers, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest
from ansim.v1 import common_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.events.publisher import DeliveredEvent, Event, Publisher
from reference_server.store.sqlite import SqliteStore

#: Async fixtures live on the session loop (pyproject), so the tests share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

SCOPE = "agencies/seoul-112/dispatches"
KEY = b"k" * 32


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "center.sqlite")
    yield opened
    await opened.close()


def event(n: int) -> Event:
    return Event("test.Event", str(n).encode(), common_pb2.MODE_TEST)


async def publish(publisher: Publisher, store: SqliteStore, *numbers: int, scope: str = SCOPE) -> None:
    for n in numbers:
        async with store.transaction() as tx:
            await publisher.publish(tx, scope, event(n))


async def take(events: AsyncGenerator[DeliveredEvent, None], count: int) -> list[DeliveredEvent]:
    return [await asyncio.wait_for(anext(events), 5) for _ in range(count)]


async def test_nothing_is_published_when_the_transaction_fails(store: SqliteStore) -> None:
    publisher = Publisher(store, KEY)
    events = publisher.subscribe(SCOPE)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await publisher.publish(tx, SCOPE, event(1))
            raise RuntimeError("domain write failed")
    await publish(publisher, store, 2)
    delivered = await asyncio.wait_for(first, 5)
    assert (delivered.payload, delivered.sequence) == (b"2", 1)
    await events.aclose()


async def test_resume_replays_after_the_cursor_then_switches_to_live_without_gap_or_duplicate(
    store: SqliteStore,
) -> None:
    publisher = Publisher(store, KEY)
    await publish(publisher, store, 1, 2, 3, 4)
    cursor = publisher.cursor(SCOPE, 2)

    async def publish_concurrently() -> None:
        for n in range(5, 25):
            await publish(publisher, store, n)
            await asyncio.sleep(0)

    async with contextlib.aclosing(publisher.subscribe(SCOPE, cursor)) as events:
        writer = asyncio.create_task(publish_concurrently())
        received = await take(events, 22)
        await writer
    assert [e.sequence for e in received] == list(range(3, 25))
    assert [int(e.payload) for e in received] == list(range(3, 25))


async def test_each_cursor_resumes_right_after_its_event(store: SqliteStore) -> None:
    publisher = Publisher(store, KEY)
    await publish(publisher, store, 1, 2, 3)
    async with contextlib.aclosing(publisher.subscribe(SCOPE, publisher.cursor(SCOPE, 0))) as events:
        second = (await take(events, 2))[1]
    async with contextlib.aclosing(publisher.subscribe(SCOPE, second.cursor)) as events:
        assert (await take(events, 1))[0].sequence == 3


async def test_cursor_of_another_scope_or_forged_is_invalid(store: SqliteStore) -> None:
    publisher = Publisher(store, KEY)
    await publish(publisher, store, 1)
    for cursor in (
        publisher.cursor("agencies/busan-112/dispatches", 1),
        Publisher(store, b"x" * 32).cursor(SCOPE, 1),
        "??",
    ):
        with pytest.raises(AnsimError) as failure:
            await anext(publisher.subscribe(SCOPE, cursor))
        assert failure.value.reason == error_pb2.ERROR_REASON_CURSOR_INVALID


async def test_cursor_older_than_the_retained_history_is_expired(store: SqliteStore) -> None:
    publisher = Publisher(store, KEY)
    await publish(publisher, store, 1, 2, 3)
    await store.prune_events(store.clock.now())
    await publish(publisher, store, 4)
    with pytest.raises(AnsimError) as failure:
        await anext(publisher.subscribe(SCOPE, publisher.cursor(SCOPE, 1)))
    assert failure.value.reason == error_pb2.ERROR_REASON_CURSOR_EXPIRED
    async with contextlib.aclosing(publisher.subscribe(SCOPE, publisher.cursor(SCOPE, 3))) as events:
        assert (await take(events, 1))[0].payload == b"4"


async def test_a_slow_subscriber_is_dropped_without_blocking_the_publisher(store: SqliteStore) -> None:
    publisher = Publisher(store, KEY, queue_size=3)
    slow = publisher.subscribe(SCOPE)
    pending = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(publish(publisher, store, *range(1, 10)), 5)  # never blocks
    assert (await pending).sequence == 1
    with pytest.raises(AnsimError) as failure:
        while True:
            await anext(slow)
    assert failure.value.reason == error_pb2.ERROR_REASON_SERVER_UNAVAILABLE
    assert publisher.subscriber_count(SCOPE) == 0


async def test_close_ends_subscriptions_cleanly(store: SqliteStore) -> None:
    publisher = Publisher(store, KEY)
    events = publisher.subscribe(SCOPE)
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    await publisher.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)
