"""Per-file row parsers for the CCTV CSV: every column is resolved to its position once per file.

``row_parser(header)`` returns a function ``(row, line) -> CameraRecord`` for the file's layout.
It gives exactly what the cell-by-cell parsers of ``fields`` give (same values, same first error
and message, see ``tests/test_csv_import.py``) but without a dictionary lookup per cell: columns
are fixed indices, and the converters of columns with few distinct values (counts, months, dates,
codes) are memoised per file. Date-times in the usual ``yyyy-mm-dd HH:MM:SS`` form take a fast
path; anything else goes through ``fields``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from reference_server.cameras import fields
from reference_server.cameras.layout import Header, Layout
from reference_server.cameras.records import CameraRecord
from reference_server.geo.codes import AdminAgencyCode

RowParser = Callable[[list[str], int], CameraRecord]
#: 관리기관명 … 데이터기준일자: the ``CameraRecord`` fields after 관리번호 that both layouts have.
SharedCells = tuple[
    str,
    str | None,
    str | None,
    str | None,
    int,
    int | None,
    str | None,
    int | None,
    tuple[int, int] | None,
    str | None,
    float,
    float,
    date | None,
]
T = TypeVar("T")

#: Entries per memoised column; past this the converter is still used, just not remembered.
MEMO_LIMIT = 50_000
#: ``yyyy-mm-dd HH:MM:SS`` in ASCII digits, which ``datetime.fromisoformat`` reads as ``fields`` does.
_ISO_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
_LAT_MIN, _LAT_MAX = fields.KOREA_LAT
_LON_MIN, _LON_MAX = fields.KOREA_LON


def memoised(convert: Callable[[str], T]) -> Callable[[str], T]:
    """``convert`` remembered per raw cell text (failures are not remembered: they raise each time)."""
    cache: dict[str, T] = {}

    def lookup(value: str) -> T:
        try:
            return cache[value]
        except KeyError:
            result = convert(value)
            if len(cache) < MEMO_LIMIT:
                cache[value] = result
            return result

    return lookup


def timestamp_converter(column: str) -> Callable[[str], datetime | None]:
    """``fields.timestamp`` for ``column``, with a fast path for ``yyyy-mm-dd HH:MM:SS``."""

    def convert(value: str) -> datetime | None:
        if _ISO_SECONDS.match(value) is not None:
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass  # out of range: fields gives the error
        return fields.timestamp(value, column)

    return convert


def derive_management_number(
    record_fields: tuple[str | None, str | None, str | None, float, float], provider_code: str | None
) -> str:
    """The stable id of a legacy row without 관리번호 (see ``csv_import``)."""
    road, lot, purpose, lat, lon = record_fields
    key = f"{road or ''}|{lot or ''}|{purpose or ''}|{lat:.6f}|{lon:.6f}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{provider_code or 'UNKNOWN'}-{digest}"


def _agency_code(value: str) -> AdminAgencyCode | None:
    code_text = fields.text(value)
    try:
        return AdminAgencyCode(code_text) if code_text is not None else None
    except ValueError:
        raise fields.FieldError(f"개방자치단체코드 is not a 7-digit code: {code_text!r}") from None


def row_parser(header: Header) -> RowParser:
    """The row parser for ``header``'s layout and column positions."""
    current = header.layout is Layout.CURRENT
    lat_col, lon_col = ("WGS84위도", "WGS84경도") if current else ("위도", "경도")
    month_col = "설치연월" if current else "설치년월"
    positions = header.positions
    width = header.width

    def at(column: str) -> int:
        """Index of ``column``; an absent optional column reads the empty cell appended at ``width``."""
        return positions.get(column, width)

    i_lat, i_lon = at(lat_col), at(lon_col)
    i_count, i_agency = at("카메라대수"), at("관리기관명")
    i_road, i_lot, i_purpose = at("소재지도로명주소"), at("소재지지번주소"), at("설치목적구분")
    i_pixels, i_direction, i_retention = at("카메라화소수"), at("촬영방면정보"), at("보관일수")
    i_month, i_phone, i_date = at(month_col), at("관리기관전화번호"), at("데이터기준일자")
    i_number = at("관리번호")
    needs_pad = i_number == width  # a legacy file without 관리번호

    count_of = memoised(lambda v: fields.integer(v, "카메라대수", minimum=0, maximum=10_000))
    pixels_of = memoised(lambda v: fields.integer(v, "카메라화소수", maximum=100_000))
    retention_of = memoised(lambda v: fields.integer(v, "보관일수", maximum=36_500))
    month_of = memoised(lambda v: fields.year_month(v, month_col))
    date_of = memoised(lambda v: fields.day(v, "데이터기준일자"))
    text = fields.text
    required_text = fields.required_text

    def coordinates(lat_text: str, lon_text: str) -> tuple[float, float]:
        try:
            lat = float(lat_text)
            lon = float(lon_text)
        except ValueError:
            return fields.coordinates(lat_text, lon_text, lat_col, lon_col)  # raises the reason
        if _LAT_MIN <= lat <= _LAT_MAX and _LON_MIN <= lon <= _LON_MAX:
            return lat, lon
        return fields.coordinates(lat_text, lon_text, lat_col, lon_col)  # raises the reason

    def shared_cells(row: list[str]) -> SharedCells:
        """The columns both layouts have, in ``CameraRecord`` order after 관리번호, parsed in the
        order that decides which error a bad row reports first."""
        lat, lon = coordinates(row[i_lat], row[i_lon])
        count = count_of(row[i_count]) or 1  # empty or 0 means one camera [CAM-004]
        agency = required_text(row[i_agency], "관리기관명")
        road, lot, purpose = text(row[i_road]), text(row[i_lot]), text(row[i_purpose])
        pixels, direction = pixels_of(row[i_pixels]), text(row[i_direction])
        retention, month = retention_of(row[i_retention]), month_of(row[i_month])
        phone, data_date = text(row[i_phone]), date_of(row[i_date])
        return (
            agency,
            road,
            lot,
            purpose,
            count,
            pixels,
            direction,
            retention,
            month,
            phone,
            lat,
            lon,
            data_date,
        )

    if current:
        i_code, i_kind = at("개방자치단체코드"), at("데이터갱신구분")
        i_updated, i_modified = at("데이터갱신시점"), at("최종수정시점")
        code_of = memoised(_agency_code)
        updated_of = timestamp_converter("데이터갱신시점")
        modified_of = timestamp_converter("최종수정시점")

        def parse_current(row: list[str], line: int) -> CameraRecord:
            cells = shared_cells(row)
            code = code_of(row[i_code])
            return CameraRecord(
                required_text(row[i_number], "관리번호"),
                *cells,
                code,
                text(row[i_kind]),
                updated_of(row[i_updated].strip()),
                modified_of(row[i_modified].strip()),
                None,
                None,
                False,
                Layout.CURRENT,
                line,
            )

        return parse_current

    i_provider_code, i_provider_name = at("제공기관코드"), at("제공기관명")

    def parse_legacy(row: list[str], line: int) -> CameraRecord:
        if needs_pad:
            row = [*row, ""]
        cells = shared_cells(row)
        provider_code = text(row[i_provider_code])
        number = text(row[i_number])
        derived = number is None
        if number is None:
            _, road, lot, purpose, *_, lat, lon, _ = cells
            number = derive_management_number((road, lot, purpose, lat, lon), provider_code)
        return CameraRecord(
            number,
            *cells,
            provider_code=provider_code,
            provider_name=text(row[i_provider_name]),
            management_number_derived=derived,
            layout=Layout.LEGACY,
            line_number=line,
        )

    return parse_legacy
