"""Mutant: grants video without an acknowledged dispatch.

Defect: CreateVideoGrant counts an agency's PENDING (not yet acknowledged) dispatch as if it were
acknowledged, so an officer gets video as soon as the agency is dispatched [VID-004 broken].

Expected to fail: TC_VID_005_SRV (CreateVideoGrant before the ack must be DISPATCH_NOT_ACKNOWLEDGED)
and TC_VID_009_SRV (with several failing conditions the first in §12.3 order, here the missing
acknowledgement, decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim.v1 import dispatch_pb2

from reference_server.domain.dispatch import repository as dispatches
from reference_server.domain.video.grants import VideoGrants

CAUGHT_BY = ("TC_VID_005_SRV", "TC_VID_009_SRV")

_original = VideoGrants._acknowledged


async def _acknowledged_or_pending(self: VideoGrants, emergency: str) -> frozenset[str]:
    acknowledged = await _original(self, emergency)
    pending = await dispatches.of_emergency(self.store, emergency, open_only=True)
    return acknowledged | {d.agency for d in pending if d.state == dispatch_pb2.DISPATCH_STATE_PENDING}


def install(ctx: Any, server: Any) -> Sequence[str]:
    VideoGrants._acknowledged = _acknowledged_or_pending  # type: ignore[method-assign]
    return []
