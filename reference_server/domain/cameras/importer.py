"""Import a national CCTV dataset file into a center's store (``ansim cameras import``).

Streaming: rows come from ``CameraCsvReader`` one at a time and are written in batches of
``BATCH_ROWS`` per transaction, so memory stays flat on multi-million-row files. A re-import
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

from ansim.v1 import camera_pb2

from reference_server.cameras.csv_import import CameraCsvReader
from reference_server.cameras.records import CameraRecord, RowError
from reference_server.clock import Clock, SystemClock
from reference_server.domain.cameras import repository
from reference_server.domain.cameras.convert import ConversionError, to_camera
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


def _batches(
    items: Iterable[tuple[int, camera_pb2.Camera]], size: int
) -> Iterator[list[tuple[int, camera_pb2.Camera]]]:
    batch: list[tuple[int, camera_pb2.Camera]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_records(
    conn: sqlite3.Connection,
    rows: Iterable[CameraRecord | RowError],
    *,
    clock: Clock | None = None,
    on_row: Callable[[CameraRecord | RowError], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportSummary:
    """Convert, de-duplicate and upsert ``rows``; the summary lists every rejected row."""
    clock = clock or SystemClock()
    summary = ImportSummary()
    first_line: dict[tuple[str, str], int] = {}

    def reject(line: int, reason: str) -> None:
        summary.rejected += 1
        summary.errors.append(RowError(line, reason))

    def cameras() -> Iterator[tuple[int, camera_pb2.Camera]]:
        for row in rows:
            if on_row is not None:
                on_row(row)
            if isinstance(row, RowError):
                reject(row.line_number, row.reason)
                continue
            try:
                camera = to_camera(row)
            except ConversionError as error:
                reject(row.line_number, str(error))
                continue
            key = (camera.management_number, camera.admin_codes.agency_code)
            if key in first_line:
                reject(row.line_number, f"관리번호 {key[0]!r} repeats the row of line {first_line[key]}")
                continue
            first_line[key] = row.line_number
            yield row.line_number, camera

    for batch in _batches(cameras(), batch_rows):
        for result in repository.upsert_batch(conn, (c for _, c in batch), clock.now()):
            if result.outcome == "inserted":
                summary.imported += 1
            elif result.outcome == "updated":
                summary.updated += 1
            else:
                summary.unchanged += 1
    summary.errors.sort(key=lambda e: e.line_number)
    return summary


def import_file(
    path: Path,
    data_dir: Path,
    *,
    encoding: str | None = None,
    on_row: Callable[[CameraRecord | RowError], None] | None = None,
    on_open: Callable[[CameraCsvReader], None] | None = None,
) -> ImportSummary:
    """Import ``path`` into the store of ``data_dir`` (raises ``HeaderError`` for an unknown header)."""
    conn = open_database(data_dir)
    try:
        with CameraCsvReader(path, encoding=encoding) as reader:
            if on_open is not None:
                on_open(reader)
            return import_records(conn, reader, on_row=on_row)
    finally:
        conn.close()
