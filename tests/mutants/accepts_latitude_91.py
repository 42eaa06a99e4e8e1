"""Mutant: accepts latitude 91.

Defect: request validation drops every violation of a ``latitude`` field, so a Location (or Point)
with latitude 91 or -91 is accepted as if it were in WGS84 range [LOC-002 broken]. All other rules
still apply.

Expected to fail: TC_LOC_001_SRV (a location outside WGS84 ranges is INVALID_FIELD naming
location.latitude / location.longitude) and TC_EMG_007_SRV (an invalid fix on StreamLocation is
REJECTED; its invalid fix has latitude 95).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim_sdk import validation
from ansim_sdk.errors import FieldViolation

CAUGHT_BY = ("TC_LOC_001_SRV", "TC_EMG_007_SRV")

_original = validation.to_field_violations


def _without_latitude(violations: Any, root: Any = None) -> list[FieldViolation]:
    found = _original(violations, root)
    return [v for v in found if v.field.rpartition(".")[2] != "latitude"]


def install(ctx: Any, server: Any) -> Sequence[str]:
    validation.to_field_violations = _without_latitude
    return []
