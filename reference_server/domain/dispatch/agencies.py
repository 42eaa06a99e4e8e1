"""Which situation room an emergency is dispatched to (spec §10.5, §13.1), from the center's settings."""

from __future__ import annotations

from collections.abc import Sequence

from ansim.v1 import common_pb2, emergency_pb2

from reference_server.config import AgencySettings

POLICE = common_pb2.AGENCY_KIND_POLICE_112
FIRE = common_pb2.AGENCY_KIND_FIRE_119
KIND_BY_NAME = {"POLICE_112": POLICE, "FIRE_119": FIRE}


def kinds_for(nature: int) -> list[int]:
    """Agency kinds an emergency of ``nature`` requests [EMG-031], in dispatch order."""
    if nature == emergency_pb2.EMERGENCY_NATURE_FIRE:
        return [FIRE, POLICE]
    if nature == emergency_pb2.EMERGENCY_NATURE_MEDICAL:
        return [FIRE]
    return [POLICE]


class AgencyDirectory:
    """The configured agencies; the demo seed installs the demo's when the settings name none."""

    def __init__(self, agencies: Sequence[AgencySettings] = ()) -> None:
        self._agencies: tuple[AgencySettings, ...] = tuple(agencies)

    def use_if_empty(self, agencies: Sequence[AgencySettings]) -> None:
        if not self._agencies:
            self._agencies = tuple(agencies)

    @property
    def agencies(self) -> tuple[AgencySettings, ...]:
        return self._agencies

    def first_of(self, kind: int, names: Sequence[str]) -> AgencySettings | None:
        """The first of ``names`` that is a configured agency of ``kind`` (a dispatch connection)."""
        for name in names:
            for agency in self._agencies:
                if agency.name == name and KIND_BY_NAME[agency.kind] == kind:
                    return agency
        return None

    def responsible(self, kind: int, sigungu_code: str) -> AgencySettings | None:
        """The agency of ``kind`` responsible for the 시군구 (one listing it, else one listing none)."""
        of_kind = [a for a in self._agencies if KIND_BY_NAME[a.kind] == kind]
        for agency in of_kind:
            if sigungu_code and sigungu_code in agency.sigungu_codes:
                return agency
        for agency in of_kind:
            if not agency.sigungu_codes:
                return agency
        return None
