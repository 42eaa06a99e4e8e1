"""Mutant: shows a ward's location and track to another guardian.

Defect: GetWardLocation / ListWardTrack let any GUARDIAN read any ward of the center, not only the
guardians listed on the ward [GRD-014, CHD-014, SEC-011 broken]. Operators are still checked.

Expected to fail: TC_GRD_008_SRV (another guardian gets NOT_OWNER for the ward's location and track)
and TC_CHD_014_SRV (a guardian removed from a ward gets NOT_OWNER at once for its location and track).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim.v1 import child_safety_pb2, common_pb2

from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.location import WardLocations
from reference_server.security.caller import Caller

CAUGHT_BY = ("TC_GRD_008_SRV", "TC_CHD_014_SRV")

_original = WardLocations._authorize


async def _any_guardian(
    self: WardLocations, caller: Caller, ward_name: str, related_emergency: str
) -> child_safety_pb2.Ward:
    if caller.role == common_pb2.ROLE_GUARDIAN:
        ward = await repository.load(self.store, ward_name, child_safety_pb2.Ward)
        if ward is not None:
            return ward  # the check "caller is one of ward.guardians" is missing
    return await _original(self, caller, ward_name, related_emergency)


def install(ctx: Any, server: Any) -> Sequence[str]:
    WardLocations._authorize = _any_guardian  # type: ignore[method-assign]
    return []
