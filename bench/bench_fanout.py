"""Issue 6 §4: fan-out of one SOS to many live subscribers.

``subscribers`` SubscribeDispatches streams (demo operator, agency seoul-112, LIVE) are opened on a
demo center; then, per round, one RaiseEmergency at 종로구 is sent and the time from the center's
answer (the SOS accepted) to the arrival of that emergency's dispatch event is taken on every
stream. The streams are spread over a few channels, as many as one client process can read
without becoming the bottleneck. Target: p99 ≤ 100 ms (absolute; the baseline column is the
same-run RaiseEmergency round trip, for scale).

Guardian streams (StreamNotifications, one recipient watched from many devices) are measured the
same way on a center of their own: :mod:`bench.guardian_fanout`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import grpc.aio

from bench import guardian_fanout
from bench.bench_sos import request_bytes
from bench.center import demo_center, serving
from bench.core import Context, Row, Target, percentile
from bench.load import close_streams

SERVICE = "ansim.v1.DispatchService"
AGENCY = "agencies/seoul-112"
CHANNELS = 8


def _identity(b: bytes) -> bytes:
    return b


async def _fanout(ctx: Context, center: Any) -> tuple[list[float], list[float], int, int]:
    from ansim.v1 import common_pb2, dispatch_pb2, emergency_pb2

    from reference_server.cli import DEMO_CENTER

    parent = f"centers/{DEMO_CENTER}"
    n = ctx.sizes.subscribers
    op = center.metadata("CENTER_OPERATOR")
    app = center.metadata("APP_USER")
    sub_req = dispatch_pb2.SubscribeDispatchesRequest(parent=parent, agency=AGENCY, mode=common_pb2.MODE_LIVE)
    channels = [center.channel() for _ in range(CHANNELS)]
    received: list[tuple[float, bytes]] = []  # every event on every stream, as it arrived
    ready = 0
    opened = asyncio.Event()

    async def subscriber(i: int) -> None:
        nonlocal ready
        ch = channels[i % CHANNELS]
        call = ch.unary_stream(
            f"/{SERVICE}/SubscribeDispatches", request_serializer=_identity, response_deserializer=_identity
        )(sub_req.SerializeToString(), metadata=op)
        ready += 1
        if ready == n:
            opened.set()
        async for raw in call:
            received.append((time.perf_counter(), raw))

    tasks = [asyncio.create_task(subscriber(i)) for i in range(n)]
    try:
        await asyncio.wait_for(opened.wait(), 120)
        await asyncio.sleep(2.0 + n / 500)  # let every stream reach the live tail (replay done)
        raise_fn = channels[0].unary_unary(
            "/ansim.v1.EmergencyService/RaiseEmergency",
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        cancel_fn = channels[0].unary_unary(
            "/ansim.v1.EmergencyService/CancelEmergency",
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        names: set[str] = set()
        cancel_errors = ""
        delays: list[float] = []
        round_trips: list[float] = []
        missing = 0
        for payload in request_bytes(parent, ctx.sizes.fanout_rounds):
            t0 = time.perf_counter()
            reply = emergency_pb2.Emergency.FromString(await raise_fn(payload, metadata=app, timeout=30))
            accepted = time.perf_counter()
            round_trips.append(accepted - t0)
            key = reply.name.encode()
            deadline = accepted + 10.0
            while time.perf_counter() < deadline:
                times = [t for t, raw in received if key in raw]
                if len(times) >= n:
                    break
                await asyncio.sleep(0.005)
            # an event that beat the answer to the client counts as 0
            delays += [max(0.0, t - accepted) for t in times]
            missing += max(0, n - len(times))
            received.clear()
            names.add(reply.name)
            cancel = emergency_pb2.CancelEmergencyRequest(
                name=reply.name,
                request_id=str(uuid.uuid4()),
                reason=emergency_pb2.EMERGENCY_CANCEL_REASON_ACCIDENTAL,
            )
            try:  # so that the next SOS is a new emergency, not the open one again
                await cancel_fn(cancel.SerializeToString(), metadata=app, timeout=30)
            except grpc.aio.AioRpcError as error:
                cancel_errors = cancel_errors or f"{error.code().name}: {error.details()}"
            await asyncio.sleep(0.2)
        if len(names) < ctx.sizes.fanout_rounds:
            ctx.log(f"fanout: only {len(names)} distinct emergencies; cancel: {cancel_errors}")
        return delays, round_trips, missing, n
    finally:
        await close_streams(tasks, channels)


def _dispatch_row(ctx: Context) -> Row:
    with demo_center(ctx.workdir / "center") as center:
        if not asyncio.run(serving(center, [SERVICE]))[SERVICE]:
            return Row("fanout.dispatch", None, "", status="pending", note=f"{SERVICE} not served")
        delays, round_trips, missing, n = asyncio.run(_fanout(ctx, center))
    if not delays:
        return Row("fanout.dispatch", None, "", status="error", note=f"no deliveries ({missing} missing)")
    ms = 1e3
    note = f"p50 {percentile(delays, 50) * ms:.1f} ms; {ctx.sizes.fanout_rounds} SOS"
    if missing:
        note += f"; {missing} deliveries missing after 10 s"
    return Row(
        f"fanout.SOS accepted → dispatch event, {n} streams, p99",
        percentile(delays, 99) * ms,
        "ms",
        percentile(round_trips, 50) * ms,
        "RaiseEmergency RTT",
        Target("figure", "<=", 100.0, "≤ 100 ms"),
        note=note,
        extra={"p50_ms": percentile(delays, 50) * ms, "missing": missing, "max_ms": max(delays) * ms},
    )


def run(ctx: Context) -> list[Row]:
    return [_dispatch_row(ctx), guardian_fanout.run(ctx)]
