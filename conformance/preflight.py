"""Before any case: does the target report what the declaration claims?

For every declared server profile, each of its services (as this suite's standard defines them) must
be SERVING in grpc.health.v1, and, when the target offers reflection, be listed by it. A mismatch is
a problem of that profile: its cases get verdict ERROR with the message (except the cases that test
exactly these things, which run anyway and report the finding as a FAIL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conformance.context import RunContext
from conformance.profiles import PROFILE_SERVICES, known_services
from conformance.reflection import Reflected, ReflectionUnavailable, list_services


@dataclass
class Preflight:
    #: Profile → problems that make its cases ERROR.
    problems: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reflection: Reflected | None = None

    def lines(self) -> list[str]:
        return [f"{p}: {m}" for p, ms in self.problems.items() for m in ms] + self.notes


async def health_status(channel: grpc.aio.Channel, service: str, wait_s: float = 5.0) -> str:
    """SERVING, NOT_SERVING, SERVICE_UNKNOWN … or the gRPC status code of a failed check."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=wait_s)
    except grpc.aio.AioRpcError as error:
        return (
            "NOT_FOUND (unknown service)" if error.code() == grpc.StatusCode.NOT_FOUND else error.code().name
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


async def run_preflight(run: RunContext, profiles: Sequence[str]) -> Preflight:
    result = Preflight()
    channel = run.channel(None, None)
    try:
        result.reflection = await list_services(channel)
    except ReflectionUnavailable as error:
        result.notes.append(f"reflection: {error} (GEN-003 is a SHOULD)")
    except grpc.aio.AioRpcError as error:
        result.notes.append(f"reflection failed: {error.code().name} {error.details()}")
    for profile in profiles:
        if profile not in PROFILE_SERVICES:
            result.notes.append(f"{profile}: a client profile; the suite plays the server for it")
            continue
        defined = known_services(profile)
        skipped = sorted(set(PROFILE_SERVICES[profile]) - set(defined))
        if skipped:
            result.notes.append(
                f"{profile}: {', '.join(skipped)} not defined by this suite's standard version; not checked"
            )
        for service in defined:
            status = await health_status(channel, service)
            if status != "SERVING":
                result.problems.setdefault(profile, []).append(
                    f"the declaration claims {profile}, but health reports {service} as {status}"
                )
            if result.reflection is not None and service not in result.reflection.services:
                result.problems.setdefault(profile, []).append(
                    f"the declaration claims {profile}, but reflection does not list {service}"
                )
    if result.reflection is not None:
        claimed = {s for p in profiles for s in PROFILE_SERVICES.get(p, ())}
        served = {s for s in result.reflection.services if s.startswith("ansim.v1.")}
        for extra in sorted(served - claimed):
            result.notes.append(f"the target also serves {extra}, of a profile not declared (not tested)")
    return result
