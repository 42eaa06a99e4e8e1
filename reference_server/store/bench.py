"""Measure commit latency of the SQLite store with synchronous=FULL and NORMAL.

python -m reference_server.store.bench DIR
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

from reference_server.store.sqlite import SqliteStore


async def bench(directory: Path, commits: int = 1000) -> dict[str, float]:
    """Milliseconds per commit for each synchronous mode."""
    results: dict[str, float] = {}
    for mode in ("FULL", "NORMAL"):
        store = await SqliteStore.open(directory / f"bench-{mode.lower()}.sqlite")

        def set_mode(c: sqlite3.Connection, m: str = mode) -> None:
            c.execute(f"PRAGMA synchronous = {m}")

        await store._on_writer(set_mode)
        started = time.perf_counter()
        for i in range(commits):
            async with store.transaction() as tx:
                await tx.append_event("bench", "bench", b"x" * 200, i % 4)
        results[mode] = (time.perf_counter() - started) / commits * 1000
        await store.close()
    return results


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m reference_server.store.bench DIR")
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    for mode, ms in asyncio.run(bench(directory)).items():
        print(f"synchronous={mode}: {ms:.3f} ms per commit")


if __name__ == "__main__":
    main()
