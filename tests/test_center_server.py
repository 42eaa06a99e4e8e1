"""The reference center as a real process on loopback: health, reflection, authentication, TLS,
shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import grpc.aio
import pytest
from ansim.v1 import common_pb2
from google.protobuf import wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ansim_sdk.errors import DOMAIN, ParsedError, parse_rpc_error
from reference_server.security.devpki import new_key
from reference_server.security.tokens import TokenIssuer
from tests.support.center import CenterProcess, start_center
from tests.support.probe_plugin import SERVICE

#: Async fixtures live on the session loop (pyproject), so the tests share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

ECHO = f"/{SERVICE}/Echo"


async def call_echo(
    center: CenterProcess, metadata: tuple[tuple[str, str], ...] = (), *, mtls_role: str | None = None
) -> ParsedError:
    async with center.mtls_channel(mtls_role) if mtls_role else center.channel() as channel:
        echo = channel.unary_unary(
            ECHO, wrappers_pb2.StringValue.SerializeToString, wrappers_pb2.StringValue.FromString
        )
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await echo(wrappers_pb2.StringValue(value="hi"), metadata=metadata, timeout=10)
    return parse_rpc_error(failure.value)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def demo_issuer(center: CenterProcess) -> TokenIssuer:
    return TokenIssuer.create("ansim-demo", center.data_dir / "pki" / "token-issuer.key")


def assert_error(error: ParsedError, code: grpc.StatusCode, reason: str) -> None:
    assert (error.code, error.reason) == (code, reason), error
    assert error.domain == DOMAIN
    assert error.error_info_count == 1


async def test_health_is_serving(demo_center: CenterProcess) -> None:
    async with demo_center.channel() as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_registered_services(demo_center: CenterProcess) -> None:
    async with demo_center.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=10)]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", SERVICE} <= names


async def test_call_without_token_is_token_missing(demo_center: CenterProcess) -> None:
    error = await call_echo(demo_center)
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


async def test_malformed_authorization_header_is_token_invalid(demo_center: CenterProcess) -> None:
    error = await call_echo(demo_center, (("authorization", "Basic dXNlcjpwYXNz"),))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


async def test_expired_token_is_token_expired(demo_center: CenterProcess) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    token = demo_issuer(demo_center).issue(
        "users/u-1", common_pb2.ROLE_APP_USER, issued_at=issued, ttl=timedelta(minutes=5)
    )
    error = await call_echo(demo_center, bearer(token))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


async def test_forged_token_is_token_invalid(demo_center: CenterProcess) -> None:
    forged = TokenIssuer("ansim-demo", new_key()).issue("users/u-1", common_pb2.ROLE_APP_USER)
    error = await call_echo(demo_center, bearer(forged))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


async def test_token_from_unknown_issuer_is_token_invalid(demo_center: CenterProcess) -> None:
    stranger = TokenIssuer("someone-else", new_key()).issue("users/u-1", common_pb2.ROLE_APP_USER)
    error = await call_echo(demo_center, bearer(stranger))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


async def test_method_without_policy_row_is_denied(demo_center: CenterProcess) -> None:
    error = await call_echo(demo_center, demo_center.metadata("CENTER_OPERATOR"))
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


async def test_officer_without_client_certificate_is_not_trusted(demo_center: CenterProcess) -> None:
    error = await call_echo(demo_center, demo_center.metadata("POLICE_OFFICER"))
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "PEER_NOT_TRUSTED")


async def test_officer_over_mutual_tls_passes_authentication(demo_center: CenterProcess) -> None:
    error = await call_echo(demo_center, demo_center.metadata("POLICE_OFFICER"), mtls_role="POLICE_OFFICER")
    # Authenticated (certificate present); then denied by the table's default deny.
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


async def test_mutual_tls_listener_refuses_clients_without_certificate(demo_center: CenterProcess) -> None:
    assert demo_center.ca is not None and demo_center.mtls_address is not None
    creds = grpc.ssl_channel_credentials(demo_center.ca.read_bytes())
    async with grpc.aio.secure_channel(demo_center.mtls_address, creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plain_connection_to_tls_center_fails(demo_center: CenterProcess) -> None:
    async with demo_center.channel(plain=True) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_insecure_dev_center_serves_plain_tcp(insecure_center: CenterProcess) -> None:
    assert not insecure_center.tls
    async with insecure_center.channel() as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    error = await call_echo(insecure_center)
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


async def test_sigterm_drains_health_and_exits_cleanly(tmp_path_factory: pytest.TempPathFactory) -> None:
    center = start_center(tmp_path_factory.mktemp("sigterm"))
    statuses: list[int] = []
    try:
        async with center.channel() as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
            first = await watch.read()
            statuses.append(first.status)
            center.process.terminate()
            while True:
                reply = await watch.read()
                if reply is grpc.aio.EOF:  # type: ignore[attr-defined]
                    break
                statuses.append(reply.status)
                if reply.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
    finally:
        code = await asyncio.to_thread(center.terminate)
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    assert code == 0, center.log()
