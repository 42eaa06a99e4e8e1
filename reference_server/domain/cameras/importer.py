"""Import a national CCTV dataset file into a center's store (``ansim cameras import``).

Streaming: rows come from ``CameraCsvReader`` one at a time (parsed, converted and serialised in
child processes, see ``parse_worker``) and are written in batches of ``BATCH_ROWS`` per transaction,
so memory stays flat on multi-million-row files. A re-import
updates each camera in place, keyed by 관리번호 (with 개방자치단체코드); the camera keeps its id.
Bad rows (the reader's row errors, rows the wire Camera cannot carry, a 관리번호 repeated within
the file) are reported with their line number and reason and skipped. Rows without coordinates or
outside Korea are such bad rows: the center does not publish them (CAM-006 allows either way) and
the report tells the operator (CAM-017).

The importer writes the store directly (SQLite WAL allows it next to a running server); a running
center picks the changes up within ``inventory.POLL_INTERVAL_S`` seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reference_server.cameras.records import CameraRecord, RowError
from reference_server.clock import Clock, SystemClock
from reference_server.domain.cameras import repository
from reference_server.domain.cameras.gc_pause import gc_paused
from reference_server.domain.cameras.parse_worker import Item, OpenedFile, prepared_in_child, prepared_rows
from reference_server.domain.cameras.repository import Prepared
from reference_server.store.migrations import apply_migrations, bundled_migrations

#: Rows per transaction: few fsyncs, bounded memory (a batch of protobuf cameras is ~10 MB).
BATCH_ROWS = 20_000
DATABASE_FILE = "center.sqlite"


@dataclass
class ImportSummary:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.imported + self.updated + self.unchanged + self.rejected


def open_database(data_dir: Path, clock: Clock | None = None) -> sqlite3.Connection:
    """A writer connection to the center's store, with every migration applied."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    apply_migrations(conn, bundled_migrations(), clock or SystemClock())
    return conn


def _batches(items: Iterable[tuple[int, Prepared]], size: int) -> Iterator[list[Prepared]]:
    batch: list[Prepared] = []
    for _, row in items:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_prepared(
    conn: sqlite3.Connection,
    items: Iterable[Item],
    *,
    clock: Clock | None = None,
    on_line: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportSummary:
    """De-duplicate and upsert prepared rows; the summary lists every rejected row."""
    clock = clock or SystemClock()
    summary = ImportSummary()
    # (관리번호, 개방자치단체코드) → first line, one entry per row of the file: the key is one string
    # (the code has no NUL, so the last NUL separates them) rather than a tuple of two, which is
    # ≈ 100 bytes less per entry (the writer's peak at 1.6 M rows: 610–626 → 405 MiB).
    first_line: dict[str, int] = {}

    def reject(line: int, reason: str) -> None:
        summary.rejected += 1
        summary.errors.append(RowError(line, reason))

    def accepted() -> Iterator[tuple[int, Prepared]]:
        for item in items:
            if isinstance(item, RowError):
                if on_line is not None:
                    on_line(item.line_number)
                reject(item.line_number, item.reason)
                continue
            line, row = item
            if on_line is not None:
                on_line(line)
            seen = first_line.setdefault(f"{row.management_number}\0{row.agency_code}", line)
            if seen != line:
                reject(line, f"관리번호 {row.management_number!r} repeats the row of line {seen}")
                continue
            yield item

    with gc_paused():
        for batch in _batches(accepted(), batch_rows):
            for result in repository.upsert_prepared_batch(conn, batch, clock.now()):
                if result.outcome == "inserted":
                    summary.imported += 1
                elif result.outcome == "updated":
                    summary.updated += 1
                else:
                    summary.unchanged += 1
    summary.errors.sort(key=lambda e: e.line_number)
    return summary


def import_records(
    conn: sqlite3.Connection,
    rows: Iterable[CameraRecord | RowError],
    *,
    clock: Clock | None = None,
    on_row: Callable[[CameraRecord | RowError], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportSummary:
    """Convert, de-duplicate and upsert ``rows`` in this process; the summary lists every rejected row."""

    def reported() -> Iterator[CameraRecord | RowError]:
        for row in rows:
            if on_row is not None:
                on_row(row)
            yield row

    return write_prepared(conn, prepared_rows(reported()), clock=clock, batch_rows=batch_rows)


def import_file(
    path: Path,
    data_dir: Path,
    *,
    encoding: str | None = None,
    on_line: Callable[[int], None] | None = None,
    on_open: Callable[[OpenedFile], None] | None = None,
) -> ImportSummary:
    """Import ``path`` into the store of ``data_dir`` (raises ``HeaderError`` for an unknown header).

    The file is parsed in child processes while this one writes the store (``parse_worker``).
    """
    conn = open_database(data_dir)
    try:
        items = prepared_in_child(path, encoding=encoding, on_open=on_open)
        return write_prepared(conn, items, on_line=on_line)
    finally:
        conn.close()
