"""Issue 6 §4, guardian side: fan-out of one child-safety alert to many guardian streams.

A ward's guardian can be watching from many devices, each its own StreamNotifications stream of
the same recipient. On a demo center, ``subscribers`` streams of the demo guardian are opened
(``{center}/guardians/demo-guardian``, the demo GUARDIAN token); then, per round, the tag of a ward
registered for that round (the demo guardian its only guardian) is pressed at a street reader
(SubmitTagEvents with the demo gateway token, a BUTTON_PRESS: a derived SOS, EMERGENCY severity,
a notification to every guardian [TAG-016, GRD-001]) and the time from sending that tag event to
the arrival of the ward's notification on every stream is taken (the first message naming the
ward on each stream; the center acks the event only after the commit that publishes it, so the
time is not taken from the ack). A ward per round,
because a second press of the same ward is suppressed while its first SOS is open. Baseline
column: the SubmitTagEvents round trip (send → ack), for scale.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc.aio

from bench.center import demo_center, serving
from bench.core import Context, Row, Target, percentile
from bench.proc_cpu import cpu_seconds
from bench.stream_readers import PROCESSES, StreamReaders

CS_SERVICE = "ansim.v1.ChildSafetyService"
TAG_SERVICE = "ansim.v1.TagEventService"
GUARDIAN_SERVICE = "ansim.v1.GuardianService"
GUARDIAN = "demo-guardian"
GATEWAY = "readers/demo-reader"
CHANNELS = 8
READERS = PROCESSES
#: 종로구청 앞, inside the demo center's area.
LAT, LON = 37.5735, 126.9790


def _identity(b: bytes) -> bytes:
    return b


@dataclass(frozen=True)
class Result:
    delays: list[float]
    round_trips: list[float]
    missing: int
    streams: int
    #: the center's CPU seconds per press round
    cpu: float


async def _call(channel: grpc.aio.Channel, service: str, rpc: str, request: Any, metadata: Any) -> bytes:
    fn = channel.unary_unary(
        f"/{service}/{rpc}", request_serializer=_identity, response_deserializer=_identity
    )
    reply: bytes = await fn(request.SerializeToString(), metadata=metadata, timeout=30)
    return reply


async def _provision(
    channel: grpc.aio.Channel, center: str, operator: Any, rounds: int
) -> tuple[str, list[tuple[str, str]]]:
    """A school zone, a street reader of the demo gateway and ``rounds`` wards of the demo
    guardian, each with a BLE tag; the reader's name and (tag uid, ward name) per round."""
    from ansim.v1 import child_safety_pb2 as cs
    from ansim.v1 import common_pb2

    reader = cs.Reader.FromString(
        await _call(
            channel,
            CS_SERVICE,
            "CreateReader",
            cs.CreateReaderRequest(
                parent=center,
                reader=cs.Reader(
                    kind=cs.READER_KIND_STREET,
                    display_name="bench reader",
                    location=common_pb2.Point(latitude=LAT, longitude=LON),
                    gateway=GATEWAY,
                    active=True,
                ),
                reader_id=f"bench-r-{uuid.uuid4().hex[:8]}",
                request_id=str(uuid.uuid4()),
            ),
            operator,
        )
    )
    area = common_pb2.Area()
    area.circles.add(center=common_pb2.Point(latitude=LAT, longitude=LON), radius_m=100)
    school = cs.Zone.FromString(
        await _call(
            channel,
            CS_SERVICE,
            "CreateZone",
            cs.CreateZoneRequest(
                parent=center,
                zone=cs.Zone(kind=cs.ZONE_KIND_SCHOOL, display_name="bench school", area=area),
                zone_id=f"bench-z-{uuid.uuid4().hex[:8]}",
                request_id=str(uuid.uuid4()),
            ),
            operator,
        )
    )
    wards = []
    for _ in range(rounds):
        ward = cs.Ward.FromString(
            await _call(
                channel,
                CS_SERVICE,
                "CreateWard",
                cs.CreateWardRequest(
                    parent=center,
                    ward=cs.Ward(
                        display_name="벤치",
                        guardians=[f"{center}/guardians/{GUARDIAN}"],
                        school_zone=school.name,
                        active=True,
                    ),
                    ward_id=f"bench-w-{uuid.uuid4().hex[:8]}",
                    request_id=str(uuid.uuid4()),
                ),
                operator,
            )
        )
        uid = uuid.uuid4().hex[:16].upper()
        await _call(
            channel,
            CS_SERVICE,
            "CreateTag",
            cs.CreateTagRequest(
                parent=center,
                tag=cs.Tag(kind=cs.TAG_KIND_BLE, uid=uid, ward=ward.name, active=True),
                tag_id=f"bench-t-{uuid.uuid4().hex[:8]}",
                request_id=str(uuid.uuid4()),
            ),
            operator,
        )
        wards.append((uid, ward.name))
    return reader.name, wards


async def _press(channel: grpc.aio.Channel, gateway: Any, reader: str, uid: str) -> None:
    """The tag's button pressed at ``reader``; raises unless the center accepted the event."""
    from ansim.v1 import child_safety_pb2 as cs
    from ansim.v1 import common_pb2

    event = cs.TagEvent(
        event_id=str(uuid.uuid4()),
        reader=reader,
        tag_uid=uid,
        kind=cs.TAG_EVENT_KIND_BUTTON_PRESS,
        mode=common_pb2.MODE_LIVE,
    )
    event.observed_time.GetCurrentTime()
    request = cs.SubmitTagEventsRequest(events=[event], request_id=str(uuid.uuid4()))
    reply = cs.SubmitTagEventsResponse.FromString(
        await _call(channel, TAG_SERVICE, "SubmitTagEvents", request, gateway)
    )
    if len(reply.acks) != 1 or reply.acks[0].HasField("error"):
        raise RuntimeError(f"the button press was not accepted: {reply}")


async def _subscribed(metrics_url: str, streams: int, deadline: float, failed: list[str]) -> None:
    """Wait until the center's ``ansim_stream_subscribers{stream="notifications"}`` gauge reaches
    ``streams``."""
    import urllib.request

    line = 'ansim_stream_subscribers{stream="notifications"}'
    count = 0.0
    while time.perf_counter() < deadline:
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(metrics_url, timeout=10).read().decode()
        )
        count = next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)
        if count >= streams:
            return
        if failed:
            raise RuntimeError(f"{len(failed)} of {streams} streams failed, first: {failed[0]}")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"only {count:.0f} of {streams} notification streams subscribed, none failed")


async def measure(center: Any, metrics_url: str, subscribers: int, rounds: int, processes: int) -> Result:
    """Open the streams, press one ward's tag per round; delays from each press to every stream."""
    from ansim.v1 import guardian_pb2 as gd

    from reference_server.cli import DEMO_CENTER

    parent = f"centers/{DEMO_CENTER}"
    stream_req = gd.StreamNotificationsRequest(parent=f"{parent}/guardians/{GUARDIAN}").SerializeToString()
    readers = StreamReaders(
        center.address,
        center.ca,
        f"/{GUARDIAN_SERVICE}/StreamNotifications",
        stream_req,
        center.metadata("GUARDIAN"),
        subscribers,
        processes,
        CHANNELS,
    )
    delays: list[float] = []
    round_trips: list[float] = []
    missing = 0
    async with center.channel() as channel:
        reader, wards = await _provision(channel, parent, center.metadata("CENTER_OPERATOR"), rounds)
        async with readers:
            await asyncio.wait_for(readers.opened(), 120)
            gateway = center.metadata("READER_GATEWAY")
            # A stream without a cursor gets only what is published after the center subscribed
            # it, so no press before the center reports every stream subscribed.
            await _subscribed(metrics_url, subscribers, time.perf_counter() + 180.0, readers.failed)
            cpu_before = cpu_seconds(center.process.pid)
            for uid, ward in wards:
                t0 = time.monotonic()
                await _press(channel, gateway, reader, uid)
                round_trips.append(time.monotonic() - t0)
                first = await readers.first_arrivals(ward.encode(), 10.0)
                delays += [t - t0 for t in first]
                missing += subscribers - len(first)
                await asyncio.sleep(0.2)
            cpu = (cpu_seconds(center.process.pid) - cpu_before) / max(1, rounds)
    return Result(delays, round_trips, missing, subscribers, cpu)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(ctx: Context) -> Row:
    """The guardian fan-out row, on a demo center of its own (with its metrics endpoint on)."""
    from reference_server.cli import DEMO_CENTER

    name = f"fanout.tag press → guardian notification, {ctx.sizes.subscribers} streams, p99"
    data_dir = ctx.workdir / "guardian-center"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    settings = data_dir.parent / "guardian-center.yaml"
    settings.write_text(
        f"center_id: {DEMO_CENTER}\ndisplay_name: bench\nmetrics_listen: 127.0.0.1:{port}\n", encoding="utf-8"
    )
    with demo_center(data_dir, "--config", str(settings)) as center:
        if not asyncio.run(serving(center, [GUARDIAN_SERVICE]))[GUARDIAN_SERVICE]:
            return Row(name, None, "", status="pending", note=f"{GUARDIAN_SERVICE} not served")
        try:
            result = asyncio.run(
                measure(
                    center,
                    f"http://127.0.0.1:{port}/metrics",
                    ctx.sizes.subscribers,
                    ctx.sizes.fanout_rounds,
                    READERS,
                )
            )
        except RuntimeError as error:  # reported in its row; the dispatch row stands
            return Row(name, None, "", status="error", note=str(error))
    if not result.delays:
        return Row(name, None, "", status="error", note=f"no deliveries ({result.missing} missing)")
    ms = 1e3
    note = (
        f"p50 {percentile(result.delays, 50) * ms:.1f} ms; {ctx.sizes.fanout_rounds} presses; {READERS}"
        f" reader processes; center CPU {result.cpu * ms:.0f} ms per press"
    )
    if result.missing:
        note += f"; {result.missing} deliveries missing after 10 s"
    return Row(
        name,
        percentile(result.delays, 99) * ms,
        "ms",
        percentile(result.round_trips, 50) * ms,
        "SubmitTagEvents RTT",
        Target("figure", "<=", 100.0, "≤ 100 ms"),
        note=note,
        extra={
            "p50_ms": percentile(result.delays, 50) * ms,
            "missing": result.missing,
            "max_ms": max(result.delays) * ms,
            "center_cpu_ms_per_round": result.cpu * ms,
            "reader_processes": READERS,
        },
    )
