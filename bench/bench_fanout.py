"""Issue 6 §4: fan-out of one SOS to many live subscribers.

``subscribers`` SubscribeDispatches streams (demo operator, agency seoul-112, LIVE) are opened on a
demo center; then, per round, one RaiseEmergency at 종로구 is sent and the time from the center's
answer (the SOS accepted) to the arrival of that emergency's dispatch event is taken on every
stream. Target: p99 ≤ 100 ms (absolute; the baseline column is the
same-run RaiseEmergency round trip, for scale). The streams are read by :data:`READERS` child
processes (:mod:`bench.stream_readers`), so that one client event loop does not queue the
arrivals it stamps.

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
from bench.proc_cpu import cpu_seconds
from bench.stream_readers import PROCESSES, StreamReaders

SERVICE = "ansim.v1.DispatchService"
AGENCY = "agencies/seoul-112"
CHANNELS = 8
READERS = PROCESSES


def _identity(b: bytes) -> bytes:
    return b


async def _fanout(ctx: Context, center: Any) -> tuple[list[float], list[float], int, int, float, list[str]]:
    from ansim.v1 import common_pb2, dispatch_pb2, emergency_pb2

    from reference_server.cli import DEMO_CENTER

    parent = f"centers/{DEMO_CENTER}"
    n = ctx.sizes.subscribers
    op = center.metadata("CENTER_OPERATOR")
    app = center.metadata("APP_USER")
    sub_req = dispatch_pb2.SubscribeDispatchesRequest(parent=parent, agency=AGENCY, mode=common_pb2.MODE_LIVE)
    method = f"/{SERVICE}/SubscribeDispatches"
    readers = StreamReaders(
        center.address, center.ca, method, sub_req.SerializeToString(), op, n, READERS, CHANNELS
    )
    async with readers, center.channel() as channel:
        await asyncio.wait_for(readers.opened(), 120)
        await asyncio.sleep(2.0 + n / 500)  # let every stream reach the live tail (replay done)
        raise_fn = channel.unary_unary(
            "/ansim.v1.EmergencyService/RaiseEmergency",
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        cancel_fn = channel.unary_unary(
            "/ansim.v1.EmergencyService/CancelEmergency",
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        names: set[str] = set()
        cancel_errors = ""
        delays: list[float] = []
        round_trips: list[float] = []
        missing = 0
        slowest: list[float] = []  # per round, the last stream's delay
        cpu_before = cpu_seconds(center.process.pid)
        for payload in request_bytes(parent, ctx.sizes.fanout_rounds):
            t0 = time.monotonic()
            reply = emergency_pb2.Emergency.FromString(await raise_fn(payload, metadata=app, timeout=30))
            accepted = time.monotonic()
            round_trips.append(accepted - t0)
            times = await readers.first_arrivals(reply.name.encode(), 10.0)
            # an event that beat the answer to the client counts as 0
            delays += [max(0.0, t - accepted) for t in times]
            slowest.append(max(times, default=accepted + 10.0) - accepted)
            missing += max(0, n - len(times))
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
        cpu_per_round = (cpu_seconds(center.process.pid) - cpu_before) / ctx.sizes.fanout_rounds
        if len(names) < ctx.sizes.fanout_rounds:
            ctx.log(f"fanout: only {len(names)} distinct emergencies; cancel: {cancel_errors}")
        ctx.log("fanout: last stream per round (ms): " + " ".join(f"{x * 1e3:.0f}" for x in slowest))
        return delays, round_trips, missing, n, cpu_per_round, readers.failed


def _dispatch_row(ctx: Context) -> Row:
    with demo_center(ctx.workdir / "center") as center:
        if not asyncio.run(serving(center, [SERVICE]))[SERVICE]:
            return Row("fanout.dispatch", None, "", status="pending", note=f"{SERVICE} not served")
        delays, round_trips, missing, n, cpu, failed = asyncio.run(_fanout(ctx, center))
    if not delays:
        return Row("fanout.dispatch", None, "", status="error", note=f"no deliveries ({missing} missing)")
    ms = 1e3
    note = (
        f"p50 {percentile(delays, 50) * ms:.1f} ms; {ctx.sizes.fanout_rounds} SOS; {READERS} reader"
        f" processes; center CPU {cpu * ms:.0f} ms per round (SOS, dispatch, cancel, close)"
    )
    if missing:
        note += f"; {missing} deliveries missing after 10 s"
    if failed:
        note += f"; {len(failed)} streams failed, first: {failed[0]}"
    return Row(
        f"fanout.SOS accepted → dispatch event, {n} streams, p99",
        percentile(delays, 99) * ms,
        "ms",
        percentile(round_trips, 50) * ms,
        "RaiseEmergency RTT",
        Target("figure", "<=", 100.0, "≤ 100 ms"),
        note=note,
        extra={
            "p50_ms": percentile(delays, 50) * ms,
            "missing": missing,
            "max_ms": max(delays) * ms,
            "center_cpu_ms_per_round": cpu * ms,
            "reader_processes": READERS,
        },
    )


def run(ctx: Context) -> list[Row]:
    return [_dispatch_row(ctx), guardian_fanout.run(ctx)]
