"""Parsers for single CCTV dataset fields. Each raises ``FieldError`` with a readable reason."""

from __future__ import annotations

import functools
import math
import re
from datetime import date, datetime

# Generous box around the Republic of Korea, including 마라도 (33.11 N), 독도 (131.87 E) and
# 백령도 (124.6 E), with margin for rounding; anything outside is a data error, not a camera.
KOREA_LAT = (32.5, 39.0)
KOREA_LON = (124.0, 132.0)


class FieldError(ValueError):
    pass


def text(value: str) -> str | None:
    value = value.strip()
    return value or None


def required_text(value: str, column: str) -> str:
    parsed = text(value)
    if parsed is None:
        raise FieldError(f"missing {column}")
    return parsed


def integer(value: str, column: str, *, minimum: int = 0, maximum: int = 10**9) -> int | None:
    """Optional integer; tolerates thousands separators and a ".0" suffix from spreadsheets."""
    value = value.strip().replace(",", "")
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        try:
            as_float = float(value)
        except ValueError:
            raise FieldError(f"{column} is not a number: {value!r}") from None
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise FieldError(f"{column} is not a whole number: {value!r}") from None
        number = int(as_float)
    if not minimum <= number <= maximum:
        raise FieldError(f"{column} out of range [{minimum}, {maximum}]: {number}")
    return number


def coordinates(lat_text: str, lon_text: str, lat_column: str, lon_column: str) -> tuple[float, float]:
    """(lat, lon), both required, finite and inside the Korea bounding box."""
    values: list[float] = []
    for raw, column in ((lat_text, lat_column), (lon_text, lon_column)):
        raw = raw.strip()
        if not raw:
            raise FieldError(f"missing {column}")
        try:
            number = float(raw)
        except ValueError:
            raise FieldError(f"{column} is not a number: {raw!r}") from None
        if not math.isfinite(number):
            raise FieldError(f"{column} is not finite: {raw!r}")
        values.append(number)
    lat, lon = values
    in_lat = KOREA_LAT[0] <= lat <= KOREA_LAT[1]
    in_lon = KOREA_LON[0] <= lon <= KOREA_LON[1]
    if not (in_lat and in_lon):
        hint = ""
        if KOREA_LAT[0] <= lon <= KOREA_LAT[1] and KOREA_LON[0] <= lat <= KOREA_LON[1]:
            hint = " (latitude and longitude look swapped)"
        raise FieldError(
            f"coordinates ({lat}, {lon}) outside Korea bounding box lat {KOREA_LAT[0]}–{KOREA_LAT[1]}, "
            f"lon {KOREA_LON[0]}–{KOREA_LON[1]}{hint}"
        )
    return lat, lon


_YEAR_MONTH = re.compile(r"^(\d{4})\s*[-./]?\s*(\d{1,2})(?:\s*[-./]?\s*\d{1,2})?\.?$")


@functools.lru_cache(maxsize=4096)  # few distinct values per dataset
def year_month(value: str, column: str) -> tuple[int, int] | None:
    """yyyymm (also yyyy-mm, yyyy.mm, yyyy/mm, or a full date) → (year, month)."""
    value = value.strip()
    if not value:
        return None
    match = _YEAR_MONTH.match(value)
    if match is None or (len(value) > 6 and value.isdigit() and len(value) != 8):
        raise FieldError(f"{column} is not yyyymm: {value!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not (1950 <= year <= 2100 and 1 <= month <= 12):
        raise FieldError(f"{column} out of range: {value!r}")
    return year, month


_DATE = re.compile(r"^(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})$")
_DATETIME = re.compile(r"^(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


@functools.lru_cache(maxsize=4096)  # few distinct values per dataset
def day(value: str, column: str) -> date | None:
    """yyyy-mm-dd (also yyyymmdd, yyyy.mm.dd, yyyy/mm/dd)."""
    value = value.strip()
    if not value:
        return None
    match = _DATE.match(value)
    try:
        if match is None:
            raise ValueError
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise FieldError(f"{column} is not a date: {value!r}") from None


@functools.lru_cache(maxsize=4096)  # few distinct values per dataset
def timestamp(value: str, column: str) -> datetime | None:
    """yyyy-mm-dd HH:MM[:SS] (naive, Asia/Seoul local time as published), or a bare date."""
    value = value.strip()
    if not value:
        return None
    match = _DATETIME.match(value)
    try:
        if match is None:
            raise ValueError
        y, mo, d, h, mi, s = match.groups()
        return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        raise FieldError(f"{column} is not a date-time: {value!r}") from None
