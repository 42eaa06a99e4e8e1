"""ResolveCenter (LoST findService): location + service → ranked candidates, signed [DIR-009..016].

The eligible centers of a service (ACTIVE, supporting the service's profile) are indexed once per
directory revision with :class:`ServiceAreaIndex`; a query reads the uncertainty region as the
circle covering it (radius 0 → the method's typical error, LOC-003).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from ansim.v1 import directory_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock
from reference_server.domain.directory.entries import CenterRegistry
from reference_server.domain.directory.geometry import area_geometry, uncertainty_radius
from reference_server.domain.directory.keys import KeyRing
from reference_server.domain.directory.signing import sign_answer
from reference_server.geo.service_areas import ServiceAreaIndex, municipality_index

#: service → the profile a center needs to be returned for it [DIR-009].
SERVICE_PROFILES = {"sos": "center-core", "safe-trip": "safe-trip", "child-safety": "child-safety"}
MAX_CANDIDATES = 5
#: How long an answer may be cached [DIR-014].
ANSWER_LIFETIME = timedelta(hours=24)


@lru_cache(maxsize=1)
def _municipalities() -> ServiceAreaIndex:
    return municipality_index()


def _municipality_code(lat: float, lon: float) -> str | None:
    found = _municipalities().locate(lat, lon, 0.0)
    return found[0].area_id if found else None


@dataclass
class _Eligible:
    revision: int
    entries: dict[str, directory_pb2.CenterEntry]
    index: ServiceAreaIndex | None


def serving_agencies(
    entry: directory_pb2.CenterEntry, lat: float, lon: float
) -> list[directory_pb2.ServingAgency]:
    """The entry's agencies that serve the municipality containing the point [DIR-011] [FED-014]."""
    if not any(a.legal_dong_sigungu_codes for a in entry.agencies):
        return list(entry.agencies)  # all serve everywhere: no need to locate the municipality
    statistics = _municipality_code(lat, lon)
    legal = {m.legal_dong_sigungu_code for m in entry.municipalities if m.statistics_code == statistics}
    legal.discard("")
    if not legal:
        return list(entry.agencies)
    return [
        a for a in entry.agencies if not a.legal_dong_sigungu_codes or legal & set(a.legal_dong_sigungu_codes)
    ]


class Resolver:
    def __init__(self, registry: CenterRegistry, keys: KeyRing, clock: Clock) -> None:
        self._registry = registry
        self._keys = keys
        self._clock = clock
        self._cache: dict[str, _Eligible] = {}
        self._lock = asyncio.Lock()

    async def _eligible(self, service: str) -> _Eligible:
        revision = await self._registry.revision()
        cached = self._cache.get(service)
        if cached is not None and cached.revision == revision:
            return cached
        async with self._lock:
            cached = self._cache.get(service)
            if cached is not None and cached.revision == revision:
                return cached
            profile = SERVICE_PROFILES[service]
            entries = {e.name: e for e in await self._registry.active() if profile in e.supported_profiles}
            areas = [(name, area_geometry(e.service_area)) for name, e in entries.items()]
            index = await asyncio.to_thread(ServiceAreaIndex, areas) if areas else None
            found = _Eligible(revision, entries, index)
            self._cache[service] = found
            return found

    async def resolve(
        self, request: directory_pb2.ResolveCenterRequest
    ) -> directory_pb2.ResolveCenterResponse:
        location = request.location
        eligible = await self._eligible(request.service)
        lat, lon = location.latitude, location.longitude
        radius = uncertainty_radius(location)
        found = eligible.index.locate(lat, lon, radius) if eligible.index is not None else []
        if not found:
            nearest = eligible.index.nearest_area(lat, lon) if eligible.index is not None else None
            metadata = {}
            if nearest is not None:
                metadata = {
                    "default_center": nearest.area_id,
                    "distance_m": str(math.floor(nearest.distance_m)),
                }
            raise AnsimError(
                error_pb2.ERROR_REASON_OUTSIDE_SERVICE_AREA,
                "no registered center is responsible for this location",
                metadata=metadata,
            )
        now = self._clock.now()
        answer = directory_pb2.ResolveCenterAnswer(
            location=location, service=request.service, directory_revision=eligible.revision
        )
        answer.resolve_time.FromDatetime(now)
        answer.expire_time.FromDatetime(now + ANSWER_LIFETIME)
        for candidate in found[:MAX_CANDIDATES]:
            entry = eligible.entries[candidate.area_id]
            answer.candidates.add(
                center=entry.name,
                match=(
                    directory_pb2.CANDIDATE_MATCH_CONTAINS
                    if candidate.contains
                    else directory_pb2.CANDIDATE_MATCH_WITHIN_UNCERTAINTY
                ),
                distance_m=0.0 if candidate.contains else round(candidate.distance_m, 1),
                overlap_percent=min(100, math.floor(candidate.overlap_fraction * 100 + 1e-9)),
                endpoints=entry.endpoints,
                certificates=entry.certificates,
                agencies=serving_agencies(entry, lat, lon),
                display_name_ko=entry.display_name_ko,
                revision=entry.revision,
            )
        answer.service_boundary.CopyFrom(eligible.entries[found[0].area_id].service_area)
        key = await self._keys.signing_key(now)
        return sign_answer(answer, key.key_id, key.private)
