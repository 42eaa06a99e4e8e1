"""The federation's route cache on a real store: a row is read once, and every write of it, rolled
back or committed, and every read overtaken by a write, leaves no stale row behind (FED-016,
FED-019 read the route per fix)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reference_server.domain.federation.route_cache import RouteCache
from reference_server.store.sqlite import SqliteStore

pytestmark = pytest.mark.asyncio(loop_scope="session")
HOME = "centers/a/emergencies/e-1"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "center.sqlite")
    yield opened
    await opened.close()


async def set_status(store: SqliteStore, cache: RouteCache, status: str, *, fail: bool = False) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO fed_routes (home_emergency, incident_id, mode, status, emergency, update_time)"
            " VALUES (?, 'i', 2, ?, x'', '2026-01-01T00:00:00.000000Z')"
            " ON CONFLICT (home_emergency) DO UPDATE SET status = excluded.status",
            (HOME, status),
        )
        cache.changed(tx, HOME)
        if fail:
            raise RuntimeError("rolled back")


async def status(cache: RouteCache) -> str | None:
    row = await cache.get(HOME)
    return None if row is None else str(row["status"])


async def test_every_write_is_seen_by_the_next_read(store: SqliteStore) -> None:
    cache = RouteCache(store)
    assert await status(cache) is None  # no route yet, remembered as such
    await set_status(store, cache, "ROUTING")
    assert await status(cache) == "ROUTING"
    await set_status(store, cache, "LOCAL")
    assert await status(cache) == "LOCAL"
    with pytest.raises(RuntimeError):
        await set_status(store, cache, "FORWARDED", fail=True)
    assert await status(cache) == "LOCAL"
    assert await status(RouteCache(store)) == "LOCAL"  # a new cache (a restart) reads the store


async def test_a_row_read_before_the_commit_is_forgotten_at_the_commit(store: SqliteStore) -> None:
    cache = RouteCache(store)
    await set_status(store, cache, "LOCAL")
    async with store.transaction() as tx:
        await tx.execute("UPDATE fed_routes SET status = 'FALLBACK' WHERE home_emergency = ?", (HOME,))
        cache.changed(tx, HOME)
        assert await status(cache) == "LOCAL"  # the committed row, read (and kept) meanwhile
        reads = [asyncio.create_task(status(cache)) for _ in range(20)]
    await asyncio.gather(*reads)
    assert await status(cache) == "FALLBACK"


async def test_only_a_bounded_number_of_routes_is_kept(store: SqliteStore) -> None:
    cache = RouteCache(store, size=2)
    await set_status(store, cache, "LOCAL")
    for i in range(5):
        await cache.get(f"centers/a/emergencies/other-{i}")
    assert len(cache) == 2
