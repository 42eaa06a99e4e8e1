"""Write camera records in the current 18-column layout of the national CCTV dataset."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from reference_server.cameras.layout import CURRENT_COLUMNS
from reference_server.cameras.records import CameraRecord


def format_coordinate(value: float) -> str:
    """Shortest text that reads back as the same float (lossless): 126.9843, 37.596635."""
    return repr(float(value))


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def _timestamp(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(" ", timespec="seconds")


def to_row(record: CameraRecord) -> list[str]:
    """One record as the 18 cells of the current layout, in ``CURRENT_COLUMNS`` order."""
    ym = record.installed_year_month
    return [
        "" if record.local_gov_code is None else record.local_gov_code.value,
        record.management_number,
        record.managing_agency,
        _opt(record.road_address),
        _opt(record.lot_address),
        _opt(record.purpose),
        str(record.camera_count),
        _opt(record.pixels_10k),
        _opt(record.direction),
        _opt(record.retention_days),
        "" if ym is None else f"{ym[0]:04d}{ym[1]:02d}",
        _opt(record.phone),
        format_coordinate(record.latitude),
        format_coordinate(record.longitude),
        _day(record.data_date),
        _opt(record.update_kind),
        _timestamp(record.updated_at),
        _timestamp(record.last_modified_at),
    ]


def write_csv(records: Iterable[CameraRecord], path: Path | str, encoding: str = "utf-8-sig") -> int:
    """Write a header and one row per record (streaming); return the number of rows.

    ``encoding`` is ``utf-8-sig`` (UTF-8 with BOM, as the portal publishes) by default; ``cp949``
    writes the legacy Korean encoding and fails on characters it cannot represent.
    """
    count = 0
    with Path(path).open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(CURRENT_COLUMNS)
        for record in records:
            writer.writerow(to_row(record))
            count += 1
    return count
