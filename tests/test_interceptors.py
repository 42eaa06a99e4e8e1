"""Error mapping, metrics and logging wrap all four handler kinds; the live-mode guard refuses LIVE.

Runs an in-process grpc.aio server with the center's interceptors in front of small test handlers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from ansim.v1 import child_safety_pb2, common_pb2, error_pb2
from google.protobuf import wrappers_pb2 as w
from prometheus_client import REGISTRY

from ansim_sdk.errors import AnsimError, parse_rpc_error
from reference_server.interceptors.chain import InterceptorChain
from reference_server.interceptors.errors import ErrorMappingInterceptor
from reference_server.interceptors.live_mode import LiveModeGuard, carries_live_mode
from reference_server.interceptors.logging import LoggingInterceptor
from reference_server.interceptors.metrics import MetricsInterceptor
from reference_server.interceptors.wrapping import AroundInterceptor

#: Async fixtures live on the session loop (pyproject), so the tests share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

S = w.StringValue


def fail(value: str) -> None:
    if value == "boom":
        raise RuntimeError("secret internals")
    if value == "gone":
        raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, "no such thing")


async def unary_unary(request: S, context: Any) -> S:
    for part in request.value.split(","):
        fail(part)
    return S(value=request.value.upper())


async def unary_stream(request: S, context: Any) -> AsyncIterator[S]:
    for part in request.value.split(","):
        fail(part)
        yield S(value=part)


async def stream_unary(requests: AsyncIterator[S], context: Any) -> S:
    parts = [r.value async for r in requests]
    for part in parts:
        fail(part)
    return S(value=",".join(parts))


async def stream_stream(requests: AsyncIterator[S], context: Any) -> None:
    async for request in requests:
        fail(request.value)
        await context.write(request)


async def tag_events(request: child_safety_pb2.SubmitTagEventsRequest, context: Any) -> S:
    return S(value="accepted")


def layers() -> list[AroundInterceptor]:
    return [MetricsInterceptor(), LoggingInterceptor(), ErrorMappingInterceptor(), LiveModeGuard()]


#: The layers as separate grpc interceptors, and as the one InterceptorChain the center installs.
INSTALLS: dict[str, Callable[[], list[grpc.aio.ServerInterceptor]]] = {  # type: ignore[type-arg]
    "separate": lambda: list(layers()),
    "chain": lambda: [InterceptorChain(layers())],
}


@pytest.fixture(params=sorted(INSTALLS))
async def channel(request: pytest.FixtureRequest) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=INSTALLS[request.param]())
    d, s = S.FromString, S.SerializeToString
    handlers = {
        "UU": grpc.unary_unary_rpc_method_handler(unary_unary, d, s),
        "US": grpc.unary_stream_rpc_method_handler(unary_stream, d, s),
        "SU": grpc.stream_unary_rpc_method_handler(stream_unary, d, s),
        "SS": grpc.stream_stream_rpc_method_handler(stream_stream, d, s),
        "Tags": grpc.unary_unary_rpc_method_handler(
            tag_events, child_safety_pb2.SubmitTagEventsRequest.FromString, s
        ),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Kinds", handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    await server.stop(None)


def stubs(ch: grpc.aio.Channel) -> dict[str, Any]:
    s, d = S.SerializeToString, S.FromString
    return {
        "UU": ch.unary_unary("/test.Kinds/UU", s, d),
        "US": ch.unary_stream("/test.Kinds/US", s, d),
        "SU": ch.stream_unary("/test.Kinds/SU", s, d),
        "SS": ch.stream_stream("/test.Kinds/SS", s, d),
    }


async def run(ch: grpc.aio.Channel, kind: str, value: str) -> list[str]:
    stub = stubs(ch)[kind]
    if kind == "UU":
        return [(await stub(S(value=value), timeout=5)).value]
    if kind == "US":
        return [m.value async for m in stub(S(value=value), timeout=5)]
    requests = [S(value=v) for v in value.split(",")]
    if kind == "SU":
        return [(await stub(iter(requests), timeout=5)).value]
    return [m.value async for m in stub(iter(requests), timeout=5)]


@pytest.mark.parametrize("kind", ["UU", "US", "SU", "SS"])
async def test_success_passes_through(channel: grpc.aio.Channel, kind: str) -> None:
    assert await run(channel, kind, "a,b")


@pytest.mark.parametrize("kind", ["UU", "US", "SU", "SS"])
async def test_domain_error_becomes_its_rich_status(channel: grpc.aio.Channel, kind: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await run(channel, kind, "a,gone")
    parsed = parse_rpc_error(failure.value)
    assert (parsed.code, parsed.reason, parsed.error_info_count) == (
        grpc.StatusCode.NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        1,
    )


@pytest.mark.parametrize("kind", ["UU", "US", "SU", "SS"])
async def test_unexpected_exception_becomes_internal_and_is_logged(
    channel: grpc.aio.Channel, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # for the whole test: the call's line may come after the status
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await run(channel, kind, "a,boom")
    parsed = parse_rpc_error(failure.value)
    assert (parsed.code, parsed.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert "secret internals" not in parsed.message
    # The server logs a call after its status is on the wire (abort sends it), so the client may
    # see the status first: wait (bounded) for the line instead of assuming an order.
    for _ in range(100):
        rpc_lines = [r for r in caplog.records if r.name == "ansim.rpc"]
        if rpc_lines and any(r.name == "ansim.errors" and r.exc_info for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    assert any(r.name == "ansim.errors" and r.exc_info for r in caplog.records)
    assert rpc_lines and rpc_lines[-1].__dict__["code"] == "INTERNAL"


async def test_metrics_count_calls_by_method_and_code(channel: grpc.aio.Channel) -> None:
    def count(code: str) -> float:
        value = REGISTRY.get_sample_value(
            "ansim_grpc_requests_total", {"method": "/test.Kinds/UU", "code": code}
        )
        return value or 0.0

    ok, not_found = count("OK"), count("NOT_FOUND")
    await run(channel, "UU", "x")
    with pytest.raises(grpc.aio.AioRpcError):
        await run(channel, "UU", "gone")
    assert (count("OK"), count("NOT_FOUND")) == (ok + 1, not_found + 1)


async def test_unparsable_request_is_malformed_message(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary("/test.Kinds/UU", lambda b: b, S.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await raw(b"\xff\xff\xff", timeout=5)
    parsed = parse_rpc_error(failure.value)
    assert (parsed.code, parsed.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_MESSAGE")


def tag_request(mode: int) -> child_safety_pb2.SubmitTagEventsRequest:
    request = child_safety_pb2.SubmitTagEventsRequest(request_id="r")
    request.events.add(mode=mode)
    return request


async def test_live_mode_is_found_at_any_depth() -> None:
    assert carries_live_mode(tag_request(common_pb2.MODE_LIVE))
    assert not carries_live_mode(tag_request(common_pb2.MODE_TEST))


async def test_live_request_is_refused_by_the_guard(channel: grpc.aio.Channel) -> None:
    stub = channel.unary_unary(
        "/test.Kinds/Tags", child_safety_pb2.SubmitTagEventsRequest.SerializeToString, S.FromString
    )
    assert (await stub(tag_request(common_pb2.MODE_EXERCISE), timeout=5)).value == "accepted"
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub(tag_request(common_pb2.MODE_LIVE), timeout=5)
    parsed = parse_rpc_error(failure.value)
    assert (parsed.code, parsed.reason) == (grpc.StatusCode.PERMISSION_DENIED, "LIVE_MODE_REFUSED")
