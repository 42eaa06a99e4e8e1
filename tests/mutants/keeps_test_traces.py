"""Mutant: keeps data past retention.

Defect: the retention job skips the ``test_location_traces`` data class, so the fixes of ended
TEST-mode trips are never purged after the TEST retention period [PRV-015, PRV-011 broken]. Every
other data class is still purged.

Expected to fail: TC_PRV_001_SRV (the fixes of an ended TEST-mode trip are purged after the declared
TEST retention and no longer returned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reference_server.domain.retention.job import RetentionJob
from reference_server.domain.retention.registry import RegisteredPurge

CAUGHT_BY = ("TC_PRV_001_SRV",)

_original = RetentionJob._purge


async def _purge_except_test_traces(self: RetentionJob, purge: RegisteredPurge) -> int:
    if purge.data_class == "test_location_traces":
        return 0
    return await _original(self, purge)


def install(ctx: Any, server: Any) -> Sequence[str]:
    RetentionJob._purge = _purge_except_test_traces  # type: ignore[method-assign]
    return []
