"""Mutant: drops one stream event on resume.

Defect: SubscribeDispatches resumed with a resume_cursor silently skips the first event after the
cursor; a fresh subscription is unaffected [DSP-021, STM-002 broken].

Expected to fail: TC_DSP_002_SRV (resuming from a replay cursor and from a live cursor continues
without gaps).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, cast

from reference_server.domain.dispatch.subscriptions import Subscriptions

CAUGHT_BY = ("TC_DSP_002_SRV",)

_original = Subscriptions.stream


async def _stream_losing_first_after_cursor(
    self: Subscriptions, parent: str, agency: str, mode: int, filter_text: str, resume_cursor: str
) -> AsyncIterator[bytes]:
    events = cast(
        AsyncGenerator[bytes, None],
        _original(self, parent, agency, mode, filter_text, resume_cursor),
    )
    skip = bool(resume_cursor)
    try:
        async for event in events:
            if skip:
                skip = False
                continue
            yield event
    finally:
        await events.aclose()


def install(ctx: Any, server: Any) -> Sequence[str]:
    Subscriptions.stream = _stream_losing_first_after_cursor  # type: ignore[method-assign]
    return []
