"""Dates in Asia/Seoul and the periods of spec §18.2."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from ansim.v1 import statistics_pb2

KST = timezone(timedelta(hours=9), "Asia/Seoul")
MAX_RANGE_DAYS = 731
P = statistics_pb2


def local_date(moment: datetime) -> date:
    return moment.astimezone(KST).date()


def parse(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def aligned(day: date, period: int) -> bool:
    if period == P.STATISTICS_PERIOD_WEEK:
        return day.isoweekday() == 1
    if period == P.STATISTICS_PERIOD_MONTH:
        return day.day == 1
    return True


def period_start(day: date, period: int) -> date:
    if period == P.STATISTICS_PERIOD_WEEK:
        return day - timedelta(days=day.isoweekday() - 1)
    if period == P.STATISTICS_PERIOD_MONTH:
        return day.replace(day=1)
    return day


def period_starts(start: date, end: date, period: int) -> list[date]:
    """Every period start in [start, end) (start is aligned)."""
    out: list[date] = []
    day = start
    while day < end:
        out.append(day)
        if period == P.STATISTICS_PERIOD_WEEK:
            day += timedelta(days=7)
        elif period == P.STATISTICS_PERIOD_MONTH:
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        else:
            day += timedelta(days=1)
    return out
