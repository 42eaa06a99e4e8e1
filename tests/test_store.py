"""SQLite store: migrations, atomic transactions and idempotency."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ansim.v1 import error_pb2
from google.protobuf import wrappers_pb2

from ansim_sdk.errors import AnsimError
from reference_server.store.idempotency import idempotent
from reference_server.store.interface import Transaction
from reference_server.store.migrations import Migration, MigrationError, bundled_migrations
from reference_server.store.sqlite import SqliteStore

#: Async fixtures live on the session loop (pyproject), so the tests share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

METHOD = "/ansim.v1.Test/Create"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    migrations = [
        *bundled_migrations(),
        Migration("9000_test", "CREATE TABLE things (name TEXT PRIMARY KEY);"),
    ]
    opened = await SqliteStore.open(tmp_path / "center.sqlite", migrations=migrations)
    yield opened
    await opened.close()


async def count(store: SqliteStore, table: str) -> int:
    row = await store.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_database_is_wal_with_full_sync_and_migrations_are_recorded(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    conn.close()
    assert versions == [*(m.version for m in bundled_migrations()), "9000_test"]
    assert versions[0] == "0001_core" and versions == sorted(versions)
    assert await store._on_writer(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL


async def test_reopening_applies_nothing_and_refuses_an_edited_migration(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    await (await SqliteStore.open(path)).close()
    await (await SqliteStore.open(path)).close()
    edited = [Migration("0001_core", bundled_migrations()[0].sql + "\n-- edited\n")]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await SqliteStore.open(path, migrations=edited)


async def test_a_failing_transaction_writes_nothing(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO things (name) VALUES ('a')")
            await tx.append_event("s", "t", b"x", 3)
            await tx.append_audit("users/u", "create", "things/a", "test", "ok")
            raise RuntimeError("boom")
    assert [await count(store, t) for t in ("things", "events", "audit_log", "event_scopes")] == [0, 0, 0, 0]


async def test_idempotent_replays_the_first_outcome_and_refuses_another_payload(store: SqliteStore) -> None:
    runs = 0

    async def create(tx: Transaction) -> wrappers_pb2.StringValue:
        nonlocal runs
        runs += 1
        await tx.execute("INSERT INTO things (name) VALUES (?)", (f"thing-{runs}",))
        return wrappers_pb2.StringValue(value=f"thing-{runs}")

    request = wrappers_pb2.StringValue(value="payload")
    first = await idempotent(store, "iss|users/u", METHOD, "r-1", request, wrappers_pb2.StringValue, create)
    again = await idempotent(store, "iss|users/u", METHOD, "r-1", request, wrappers_pb2.StringValue, create)
    assert first == again == wrappers_pb2.StringValue(value="thing-1")
    assert runs == 1 and await count(store, "things") == 1

    other = wrappers_pb2.StringValue(value="different payload")
    with pytest.raises(AnsimError) as refused:
        await idempotent(store, "iss|users/u", METHOD, "r-1", other, wrappers_pb2.StringValue, create)
    assert refused.value.reason == error_pb2.ERROR_REASON_REQUEST_ID_REUSED

    # Another caller may use the same request_id independently.
    await idempotent(store, "iss|users/v", METHOD, "r-1", request, wrappers_pb2.StringValue, create)
    assert runs == 2


async def test_idempotent_records_nothing_when_the_action_fails(store: SqliteStore) -> None:
    async def fail(tx: Transaction) -> wrappers_pb2.StringValue:
        await tx.execute("INSERT INTO things (name) VALUES ('x')")
        raise AnsimError(error_pb2.ERROR_REASON_INVALID_STATE_TRANSITION, "no")

    request = wrappers_pb2.StringValue(value="p")
    with pytest.raises(AnsimError):
        await idempotent(store, "c", METHOD, "r-2", request, wrappers_pb2.StringValue, fail)
    assert await count(store, "things") == 0 and await count(store, "idempotency") == 0


async def test_an_event_published_to_many_scopes_is_stored_once_and_pruned_with_its_rows(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        await tx.append_event("a", "t", b"0", 3)
        fanned = await tx.append_events(["a", "b", "c"], "t", b"shared", 3)
    assert [(e.scope, e.sequence, e.payload) for e in fanned] == [
        ("a", 2, b"shared"),
        ("b", 1, b"shared"),
        ("c", 1, b"shared"),
    ]
    assert [e.payload for e in await store.events_after("a", 0, 10)] == [b"0", b"shared"]
    assert [e.payload for e in await store.events_after("c", 0, 10)] == [b"shared"]
    assert await count(store, "event_payloads") == 1
    assert await store.prune_events(store.clock.now()) == 4
    assert await count(store, "event_payloads") == 0


async def test_event_sequences_are_per_scope_and_pruning_is_remembered(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        a1 = await tx.append_event("a", "t", b"1", 3)
        b1 = await tx.append_event("b", "t", b"1", 3)
        a2 = await tx.append_event("a", "t", b"2", 3)
    assert (a1.sequence, b1.sequence, a2.sequence) == (1, 1, 2)
    assert [e.payload for e in await store.events_after("a", 0, 10)] == [b"1", b"2"]
    assert await store.prune_events(store.clock.now()) == 3
    assert await store.event_bounds("a") == (2, 2)
    async with store.transaction() as tx:
        assert (await tx.append_event("a", "t", b"3", 3)).sequence == 3


async def test_one_event_appended_to_many_scopes_numbers_each_scope_as_single_appends_do(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        await tx.append_event("a", "t", b"0", 3)
        fanned = await tx.append_events(["a", "b", "a"], "t", b"x", 3)
    assert [(e.scope, e.sequence) for e in fanned] == [("a", 2), ("b", 1), ("a", 3)]
    assert [(e.sequence, e.payload) for e in await store.events_after("a", 0, 10)] == [
        (1, b"0"),
        (2, b"x"),
        (3, b"x"),
    ]
    assert await store.event_bounds("b") == (0, 1)
    async with store.transaction() as tx:
        assert await tx.append_events([], "t", b"y", 3) == []


async def test_concurrent_transactions_share_a_commit_and_a_failing_one_rolls_back_alone(
    store: SqliteStore,
) -> None:
    commits = 0

    def trace(statement: str) -> None:
        nonlocal commits
        commits += statement.strip().upper() == "COMMIT"

    await store._on_writer(lambda c: c.set_trace_callback(trace))
    seen: list[str] = []

    async def write(i: int) -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO things (name) VALUES (?)", (f"t{i}",))
            tx.on_commit(lambda: seen.append(f"t{i}"))
            if i % 5 == 0:
                raise RuntimeError("boom")
        # Returned: committed, visible to the readers.
        assert await store.fetchone("SELECT 1 FROM things WHERE name = ?", (f"t{i}",)) is not None

    results = await asyncio.gather(*(write(i) for i in range(40)), return_exceptions=True)
    failed = [i for i, r in enumerate(results) if isinstance(r, RuntimeError)]
    assert failed == list(range(0, 40, 5)) and all(r is None for r in results if not isinstance(r, Exception))
    names = {r["name"] for r in await store.fetchall("SELECT name FROM things")}
    assert names == {f"t{i}" for i in range(40) if i % 5}
    assert sorted(seen) == sorted(names)
    assert 1 <= commits < 40 - len(failed)
    await store._on_writer(lambda c: c.set_trace_callback(None))


async def test_a_cancelled_caller_does_not_leave_the_batch_open(store: SqliteStore) -> None:
    async def slow(i: int) -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO things (name) VALUES (?)", (f"c{i}",))
            await asyncio.sleep(0.01)

    tasks = [asyncio.ensure_future(slow(i)) for i in range(10)]
    await asyncio.sleep(0.015)
    for task in tasks[3:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for _ in range(50):
        if store._batch is None and not store._write_lock.locked():
            break
        await asyncio.sleep(0.01)
    assert store._batch is None and not await store._on_writer(lambda c: c.in_transaction)
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO things (name) VALUES ('after')")
    assert await store.fetchone("SELECT 1 FROM things WHERE name = 'after'") is not None


async def test_a_transaction_waits_off_the_loop_while_another_process_holds_the_write_lock(
    store: SqliteStore,
) -> None:
    """BEGIN is tried on the loop without waiting; when another connection (an import in another
    process) holds the write lock, the transaction waits on the writer thread, the loop keeps
    running, and it commits once the lock is free."""
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO things (name) VALUES ('after-the-lock')")

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writing.done() and ticks >= 10
    other.execute("ROLLBACK")
    other.close()
    await asyncio.wait_for(writing, 10)
    ticker.cancel()
    assert await count(store, "things") == 1
