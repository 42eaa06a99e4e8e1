"""The injectable clock: every piece of the center asks it for the time instead of the OS."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time (UTC, timezone-aware) for records and deadlines; monotonic seconds for latencies."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class OffsetClock(SystemClock):
    """Real time shifted by a settable offset, for exercising deadlines and retention without
    waiting (time still flows; ``advance`` jumps it forward).
    """

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def now(self) -> datetime:
        return super().now() + self.offset

    def monotonic(self) -> float:
        return super().monotonic() + self.offset.total_seconds()


RFC3339 = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with microseconds, the one text form of times in the store (formatted by hand:
    ``strftime`` costs twice as much, and every stored row and event carries a few of these)."""
    m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if m.year < 1000:  # strftime's %Y does not pad
        return m.strftime(RFC3339)
    return (
        f"{m.year}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    )


def from_rfc3339(text: str) -> datetime:
    """The inverse of :func:`to_rfc3339`; ``fromisoformat`` for that exact shape (≈ 10× cheaper than
    ``strptime``, which still reads, or refuses, anything else)."""
    if len(text) == 27 and text[10] == "T" and text[19] == "." and text[26] == "Z":
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.strptime(text, RFC3339).replace(tzinfo=UTC)
