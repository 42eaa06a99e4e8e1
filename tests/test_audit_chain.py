"""The audit log's hash chain names the first bad record after edits, deletions, insertions and
reordering done directly in SQLite (as someone with file access would)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reference_server.store import audit
from reference_server.store.sqlite import SqliteStore

#: Async fixtures live on the session loop (pyproject), so the tests share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

RECORDS = 6


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "center.sqlite")
    for i in range(1, RECORDS + 1):
        async with opened.transaction() as tx:
            await tx.append_audit(
                f"officers/o-{i}", "video.grant", f"centers/c/videoGrants/g-{i}", "EMG", "GRANTED"
            )
    yield opened
    await opened.close()


def tamper(store: SqliteStore, *statements: str) -> None:
    """Run SQL as an attacker would: directly on the file, with the append-only triggers removed."""
    conn = sqlite3.connect(store.path)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def test_intact_chain_verifies(store: SqliteStore) -> None:
    assert await store.verify_audit() is None
    records = await store.audit_records()
    assert [r.seq for r in records] == list(range(1, RECORDS + 1))
    assert records[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))


async def test_canonical_serialization_is_the_documented_json_array() -> None:
    data = audit.canonical(1, "2026-01-31T09:00:00.000000Z", "users/김", "a", "r", "p", "o", "0" * 64)
    expected = '[1,"2026-01-31T09:00:00.000000Z","users/김","a","r","p","o","' + "0" * 64 + '"]'
    assert data == expected.encode("utf-8")


async def test_the_log_is_append_only_through_sql(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET outcome = 'DENIED' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    conn.close()


async def test_edited_record_is_named(store: SqliteStore) -> None:
    tamper(store, "UPDATE audit_log SET outcome = 'DENIED' WHERE seq = 3")
    problem = await store.verify_audit()
    assert problem is not None and problem.seq == 3 and "edited" in problem.problem


async def test_removed_record_is_named_by_the_one_after_it(store: SqliteStore) -> None:
    tamper(store, "DELETE FROM audit_log WHERE seq = 4")
    problem = await store.verify_audit()
    assert problem is not None and problem.seq == 5 and "removed" in problem.problem


async def test_inserted_record_is_named(store: SqliteStore) -> None:
    records = await store.audit_records()
    prev = records[1].hash  # forge a record that links correctly to record 2 ...
    forged = audit.record_hash(3, records[2].time, "users/x", "video.grant", "g", "EMG", "GRANTED", prev)
    tamper(
        store,
        "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103",
        "INSERT INTO audit_log (seq, time, actor, action, resource, purpose, outcome, prev_hash, hash) VALUES"
        f" (3, '{records[2].time}', 'users/x', 'video.grant', 'g', 'EMG', 'GRANTED', '{prev}', '{forged}')",
    )
    problem = await store.verify_audit()
    # ... so the break shows at the shifted original record 3, now at seq 4.
    assert problem is not None and problem.seq == 4


async def test_naively_inserted_record_is_named_itself(store: SqliteStore) -> None:
    tamper(
        store,
        "INSERT INTO audit_log (seq, time, actor, action, resource, purpose, outcome, prev_hash, hash) VALUES"
        " (0, '2026-01-01T00:00:00.000000Z', 'users/x', 'a', 'r', 'p', 'o', 'x', 'y')",
    )
    problem = await store.verify_audit()
    assert problem is not None and problem.seq == 0


async def test_reordered_records_are_named(store: SqliteStore) -> None:
    tamper(
        store,
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 5",
        "UPDATE audit_log SET seq = 5 WHERE seq = 100",
    )
    problem = await store.verify_audit()
    assert problem is not None and problem.seq == 2


async def test_anchor_detects_truncation_and_rewriting(store: SqliteStore) -> None:
    head = await store.audit_head()
    assert head is not None and head[0] == RECORDS
    assert await store.verify_audit(anchor=head) is None
    tamper(store, f"DELETE FROM audit_log WHERE seq = {RECORDS}")
    problem = await store.verify_audit(anchor=head)
    assert problem is not None and problem.seq == RECORDS and "truncated" in problem.problem
