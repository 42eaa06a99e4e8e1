"""The store's one text form of times (reference_server.clock): the hand-made formatter and the fast
reader give exactly what ``strftime``/``strptime`` with the RFC 3339 pattern give."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reference_server.clock import RFC3339, from_rfc3339, to_rfc3339


def test_text_form_matches_strftime_and_strptime() -> None:
    rng = random.Random(6)
    seoul = timezone(timedelta(hours=9))
    start = datetime(1000, 1, 2, tzinfo=UTC)
    span = int((datetime(9999, 12, 30, tzinfo=UTC) - start).total_seconds())
    moments = [
        start + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6)) for _ in range(3000)
    ]
    moments.append(datetime(2026, 12, 7, 13, 30, tzinfo=UTC))
    for moment in moments:
        for shown in (moment, moment.astimezone(seoul)):
            text = to_rfc3339(shown)
            assert text == shown.astimezone(UTC).strftime(RFC3339)
            back = from_rfc3339(text)
            assert back == datetime.strptime(text, RFC3339).replace(tzinfo=UTC) == moment
            assert back.tzinfo is UTC
    early = datetime(999, 1, 1, tzinfo=UTC)  # formatted as strftime does (unpadded year)
    assert to_rfc3339(early) == early.strftime(RFC3339)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07T13:30:09.943827",
        "2026-12-07 13:30:09.943827Z",
        "2026-12-07T13:30:09,943827Z",
        "2026-13-07T13:30:09.943827Z",
        "2026-12-07T13:30:09Z",
        "",
    ],
)
def test_anything_else_is_refused_as_before(text: str) -> None:
    with pytest.raises(ValueError):
        datetime.strptime(text, RFC3339)
    with pytest.raises(ValueError):
        from_rfc3339(text)
