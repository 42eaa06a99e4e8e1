"""Mutant: ignores request_id (no idempotency).

Defect: the store never finds an earlier outcome for (caller, method, request_id), so every retry
runs the mutation again and a request_id reused with another payload is not refused [IDM-002,
IDM-003 broken]. Outcomes are still recorded; they are just never looked up.

Expected to fail (the cases that retry a mutation or reuse a request_id): TC_IDM_001_SRV,
TC_DSP_005_SRV, TC_VID_012_SRV, TC_VID_014_SRV, TC_CHD_016_SRV, TC_TAG_017_SRV, TC_TRIP_002_SRV,
TC_TRIP_005_SRV. Not TC_EMG_005_SRV: a retried RaiseEmergency is also a second press while the
emergency is active (EMG-004), which returns the same emergency without idempotency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reference_server.store.sqlite import SqliteTransaction

CAUGHT_BY = (
    "TC_IDM_001_SRV",
    "TC_DSP_005_SRV",
    "TC_VID_012_SRV",
    "TC_VID_014_SRV",
    "TC_CHD_016_SRV",
    "TC_TAG_017_SRV",
    "TC_TRIP_002_SRV",
    "TC_TRIP_005_SRV",
)


async def _never_seen(
    self: SqliteTransaction, caller: str, method: str, request_id: str, request_hash: bytes
) -> bytes | None:
    return None


def install(ctx: Any, server: Any) -> Sequence[str]:
    SqliteTransaction.idempotency_lookup = _never_seen  # type: ignore[method-assign]
    return []
