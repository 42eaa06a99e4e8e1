"""Generic test cases: what every center-core and directory server does, whatever its services.

Health and reflection (GEN-002, GEN-003, GEN-005, SEC-013), the bearer-token checks (SEC-005,
SEC-007) with the error model (ERR-001, ERR-002), malformed request bytes (ERR-007), unknown fields
(GEN-004), TLS only (SEC-001) and the spec-version header (GEN-041). The rpc they call is the
profile's probe (conformance.cases.probes).
"""

from __future__ import annotations

import re

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.probes import probe_for
from conformance.descriptors import compare
from conformance.expect import fail
from conformance.preflight import health_status
from conformance.profiles import known_services
from conformance.reflection import ReflectionUnavailable, files_for_symbols, list_services
from conformance.standard import standard_files
from conformance.wire import MALFORMED_PAYLOADS, append_unknown_fields

SERVERS = ("center-core", "directory")
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def _declared_services(ctx: CaseContext) -> list[str]:
    return [s for p in ctx.declaration.profiles for s in known_services(p)]


# --- health and reflection -------------------------------------------------------------------------


@case(
    "TC_GEN_001_SRV",
    title="Health reports SERVING for every service of every declared profile",
    requirements=["GEN-002"],
    profile=SERVERS,
    kind="positive",
    needs_preflight=False,
)
async def health_serving(ctx: CaseContext) -> None:
    channel = ctx.channel(role=None)
    wrong = [
        f"{s}: {status}"
        for s in _declared_services(ctx)
        if (status := await health_status(channel, s)) != "SERVING"
    ]
    check(not wrong, "grpc.health.v1 does not report SERVING for: " + "; ".join(wrong))


@case(
    "TC_GEN_002_SRV",
    title="Server reflection lists every service of every declared profile",
    requirements=["GEN-003"],
    profile=SERVERS,
    kind="positive",
    needs_preflight=False,
)
async def reflection_lists_services(ctx: CaseContext) -> None:
    try:
        reflected = await list_services(ctx.channel(role=None))
    except ReflectionUnavailable as error:
        fail(str(error))
        return
    missing = [s for s in _declared_services(ctx) if s not in reflected.services]
    check(not missing, f"reflection ({reflected.api}) does not list: {', '.join(missing)}")


@case(
    "TC_GEN_003_SRV",
    title="Descriptors served by reflection match the standard field by field",
    requirements=["GEN-005"],
    profile=SERVERS,
    kind="positive",
    features=["server-reflection"],
    needs_preflight=False,
    timeout=30.0,
)
async def descriptors_match(ctx: CaseContext) -> None:
    channel = ctx.channel(role=None)
    services = _declared_services(ctx)
    try:
        served = await files_for_symbols(channel, services)
    except (ReflectionUnavailable, LookupError) as error:
        fail(f"cannot read the served descriptors: {error}")
        return
    standard = []
    for f in standard_files():
        proto = descriptor_pb2.FileDescriptorProto()
        f.CopyToProto(proto)
        standard.append(proto)
    differences = compare(standard, served.values(), services)
    for line in differences[20:]:
        ctx.note(line)
    check(
        not differences,
        f"{len(differences)} difference(s) from the standard's descriptors: " + "; ".join(differences[:20]),
    )


@case(
    "TC_GEN_004_SRV",
    title="Health and reflection answer without a token",
    requirements=["SEC-013"],
    profile=SERVERS,
    kind="positive",
    needs_preflight=False,
)
async def health_and_reflection_need_no_token(ctx: CaseContext) -> None:
    channel = ctx.channel(role=None)
    await expect_ok(
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="")),
        "a health check (of the whole server) without a token",
    )
    try:
        await list_services(channel)
    except ReflectionUnavailable:
        ctx.note("the target offers no reflection; only health was checked")
    except grpc.aio.AioRpcError as error:
        fail(f"reflection without a token failed with {error.code().name}: {error.details()}")


# --- bearer tokens ---------------------------------------------------------------------------------


@case(
    "TC_SEC_001_SRV",
    title="A call without a bearer token fails UNAUTHENTICATED / TOKEN_MISSING with a well-formed status",
    requirements=["SEC-005", "ERR-001", "ERR-002"],
    profile=SERVERS,
    kind="negative",
)
async def no_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=None), code=UNAUTHENTICATED, reason="TOKEN_MISSING",
        what="a call without a token",
    )  # fmt: skip


@case(
    "TC_SEC_002_SRV",
    title="A token with a forged signature fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-005", "ERR-001"],
    profile=SERVERS,
    kind="negative",
)
async def forged_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    token = ctx.tokens.forged(probe.role)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token=token), code=UNAUTHENTICATED,
        reason="TOKEN_INVALID", what="a call with a forged token",
    )  # fmt: skip


@case(
    "TC_SEC_003_SRV",
    title="An expired token fails UNAUTHENTICATED / TOKEN_EXPIRED",
    requirements=["SEC-005", "ERR-002"],
    profile=SERVERS,
    kind="negative",
)
async def expired_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    token = ctx.tokens.expired(probe.role)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token=token), code=UNAUTHENTICATED,
        reason="TOKEN_EXPIRED", what="a call with a token that expired an hour ago",
    )  # fmt: skip


@case(
    "TC_SEC_004_SRV",
    title="A token without a role claim fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-007"],
    profile=SERVERS,
    kind="negative",
)
async def roleless_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    token = ctx.tokens.roleless(probe.role)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token=token), code=UNAUTHENTICATED,
        reason="TOKEN_INVALID", what="a call with a role-less token",
    )  # fmt: skip


@case(
    "TC_SEC_005_SRV",
    title="A token whose role claim is not a Role value fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-007"],
    profile=SERVERS,
    kind="negative",
)
async def unknown_role_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    token = ctx.tokens.unknown_role(probe.role)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token=token), code=UNAUTHENTICATED,
        reason="TOKEN_INVALID", what="a call with role SUPERUSER",
    )  # fmt: skip


@case(
    "TC_SEC_006_SRV",
    title="A token for another audience fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-005"],
    profile=SERVERS,
    kind="negative",
)
async def wrong_audience_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    token = ctx.tokens.wrong_audience(probe.role)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token=token), code=UNAUTHENTICATED,
        reason="TOKEN_INVALID", what="a call with aud 'not-ansim'",
    )  # fmt: skip


@case(
    "TC_SEC_007_SRV",
    title="A token from an untrusted issuer fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-005"],
    profile=SERVERS,
    kind="negative",
)
async def untrusted_issuer_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    token = ctx.tokens.untrusted_issuer(probe.role)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token=token), code=UNAUTHENTICATED,
        reason="TOKEN_INVALID", what="a call with a token of an unknown issuer",
    )  # fmt: skip


@case(
    "TC_SEC_008_SRV",
    title="A bearer value that is not a JWT fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-005"],
    profile=SERVERS,
    kind="negative",
)
async def garbage_token(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    await expect_error(
        ctx.raw(probe.method, probe.payload, role=probe.role, token="not-a-jwt"), code=UNAUTHENTICATED,
        reason="TOKEN_INVALID", what="a call with 'Bearer not-a-jwt'",
    )  # fmt: skip


@case(
    "TC_SEC_009_SRV",
    title="A plain-text connection is refused when the target uses TLS",
    requirements=["SEC-001"],
    profile=SERVERS,
    kind="negative",
)
async def plaintext_refused(ctx: CaseContext) -> None:
    if ctx.declaration.tls.insecure:
        ctx.skip("the declaration is insecure (a development server); SEC-001 needs a TLS target")
    stub = health_pb2_grpc.HealthStub(ctx.plaintext_channel())
    try:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5.0)
    except grpc.aio.AioRpcError:
        return
    fail("the target answered a plain-text (non-TLS) request on its service port")


# --- robustness ------------------------------------------------------------------------------------


@case(
    "TC_GEN_005_SRV",
    title="A request carrying fields unknown to the server is accepted and they are ignored",
    requirements=["GEN-004"],
    profile=SERVERS,
    kind="positive",
)
async def unknown_fields_accepted(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    payload = append_unknown_fields(probe.payload)
    raw = await expect_ok(ctx.raw(probe.method, payload, role=probe.role), "a request with unknown fields")
    try:
        probe.response_type.FromString(raw)
    except DecodeError as error:
        fail(f"the response does not parse as {probe.response_type.DESCRIPTOR.full_name}: {error}")


@case(
    "TC_GEN_006_SRV",
    title="Request bytes that do not parse get INVALID_ARGUMENT and the server keeps serving",
    requirements=["ERR-007"],
    profile=SERVERS,
    kind="negative",
)
async def malformed_bytes(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    for what, payload in MALFORMED_PAYLOADS.items():
        await expect_error(
            ctx.raw(probe.method, payload, role=probe.role),
            code=grpc.StatusCode.INVALID_ARGUMENT,
            reason="MALFORMED_MESSAGE",
            details_required=False,
            what=f"a request whose bytes are malformed ({what})",
        )
    await expect_ok(
        ctx.raw(probe.method, probe.payload, role=probe.role), "a valid request after malformed ones"
    )


@case(
    "TC_GEN_007_SRV",
    title="Responses carry the ansim-spec-version header with a semantic version",
    requirements=["GEN-041"],
    profile=SERVERS,
    kind="positive",
)
async def spec_version_header(ctx: CaseContext) -> None:
    probe = probe_for(ctx)
    call = ctx.raw(probe.method, probe.payload, role=probe.role)
    await expect_ok(call, "the probe call")
    headers = {k.lower(): v for k, v in (await call.initial_metadata() or ())}
    value = headers.get("ansim-spec-version")
    check(value is not None, "the response has no ansim-spec-version header")
    check(SEMVER.match(str(value)) is not None, f"ansim-spec-version {value!r} is not a semantic version")
