"""Profiles, the services each server profile implements, roles, and the optional features a
vendor may declare.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansim.v1 import common_pb2

from ansim_sdk.catalogue import PROFILES
from conformance.standard import standard_services

#: Server profiles → the ansim.v1 services a server claiming the profile implements (spec §1.3 and
#: the "Contract:" line of each service section).
PROFILE_SERVICES: Mapping[str, tuple[str, ...]] = {
    "center-core": ("ansim.v1.EmergencyService", "ansim.v1.CameraService", "ansim.v1.DispatchService"),
    "child-safety": ("ansim.v1.ChildSafetyService", "ansim.v1.TagEventService", "ansim.v1.GuardianService"),
    "safe-trip": ("ansim.v1.SafeTripService",),
    "directory": ("ansim.v1.DirectoryService",),
    "federation": ("ansim.v1.FederationService",),
    "statistics": ("ansim.v1.StatisticsService",),
}
SERVER_PROFILES: tuple[str, ...] = tuple(PROFILE_SERVICES)
#: Client profiles: the suite plays the server (not yet supported by the runner).
CLIENT_PROFILES: tuple[str, ...] = tuple(p for p in PROFILES if p not in PROFILE_SERVICES)

#: Token roles as written in the ``role`` claim and in vendor.yaml: Role value names without ROLE_.
ROLE_NAMES: tuple[str, ...] = tuple(
    v.name.removeprefix("ROLE_") for v in common_pb2.Role.DESCRIPTOR.values if v.number != 0
)

#: Optional features a vendor declares in vendor.yaml. A case that needs a feature the vendor did not
#: declare is skipped (verdict skip) and does not count against the profile. Add a feature here, with
#: what it means, before a case uses it.
FEATURES: Mapping[str, str] = {
    "server-reflection": "the server offers gRPC server reflection (v1 or v1alpha) [GEN-003]",
    "live-read-isolation": (
        "the target is a test deployment holding no real emergencies, so the suite may open a LIVE"
        " dispatch subscription to prove TEST dispatches never reach it [GEN-011]; NEVER declare"
        " this for a production center: a LIVE subscription would stream real people's data"
    ),
}


def known_services(profile: str) -> tuple[str, ...]:
    """The services of ``profile`` that this suite's version of the standard defines.

    A service whose proto is not part of the standard yet (not in the generated descriptors) is left
    out: the suite tests the standard version it was built from.
    """
    defined = standard_services()
    return tuple(name for name in PROFILE_SERVICES.get(profile, ()) if name in defined)
