"""Issue 6 §3: durable tag-event ingest through IngestTagEvents against raw SQLite.

Candidate: a demo center; ``STREAMS`` reader-gateway streams, each sending its share of sightings of
the demo tag at the demo school-gate reader and counting acks (the center acks an event once it is
durable). A second candidate, the unary batch path SubmitTagEvents (TAG-009): ``STREAMS`` clients,
each sending its share in calls of ``SUBMIT_BATCH`` events. Baseline: the same rows inserted
straight into SQLite with the store's settings (WAL, synchronous=FULL), ``BATCH`` rows per
transaction. A second figure, one transaction per row, is the fsync floor that any
one-commit-per-event design meets. Each candidate row also reports the center's CPU per event
(``/proc``, user + system), the figure least moved by other work on a shared machine.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from bench.center import demo_center, echo_process, serving
from bench.core import Context, Row, Target
from bench.proc_cpu import cpu_seconds

SERVICE = "ansim.v1.TagEventService"
STREAMS = 4
BATCH = 100
#: Events per SubmitTagEvents call (the most TAG-009 allows).
SUBMIT_BATCH = 500
#: Items of each share sent before the timed part (connection set-up, first-call costs).
WARM = 5
READER = "readers/school-gate"
TAG_UID = "3F2A9C01"


def events(center: str, n: int) -> list[Any]:
    from ansim.v1 import child_safety_pb2 as cs
    from ansim.v1 import common_pb2

    out = []
    now = datetime.now(UTC)
    for _ in range(n):
        ev = cs.TagEvent(
            event_id=str(uuid.uuid4()),
            reader=f"{center}/{READER}",
            tag_uid=TAG_UID,
            kind=cs.TAG_EVENT_KIND_SIGHTING,
            mode=common_pb2.MODE_LIVE,
        )
        ev.observed_time.FromDatetime(now)
        ev.sighting.rssi_dbm = -60
        ev.sighting.direction = cs.SIGHTING_DIRECTION_INBOUND
        out.append(ev)
    return out


def raw_sqlite(path: Path, evs: list[Any], batch: int) -> float:
    """Events per second inserting ``evs`` into a fresh database, ``batch`` rows per commit."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE tag_events (event_id TEXT PRIMARY KEY, reader TEXT NOT NULL, tag_uid TEXT, "
        "kind INTEGER NOT NULL, observed_time TEXT NOT NULL, mode INTEGER NOT NULL, payload BLOB NOT NULL)"
    )
    rows = [
        (
            e.event_id,
            e.reader,
            e.tag_uid,
            e.kind,
            e.observed_time.ToJsonString(),
            e.mode,
            e.SerializeToString(),
        )
        for e in evs
    ]
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO tag_events VALUES (?, ?, ?, ?, ?, ?, ?)", rows[start : start + batch])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return len(rows) / seconds


async def _timed(
    channels: list[grpc.aio.Channel],
    clients: list[Any],
    shares: list[list[Any]],
    one: Callable[[Any, list[Any]], Awaitable[None]],
) -> float:
    """Items per second: ``one(client, items)`` on every client at once, first over ``WARM`` items
    of each share (not timed), then over the rest; the channels are closed after."""
    try:
        await asyncio.gather(*(one(c, sh[:WARM]) for c, sh in zip(clients, shares, strict=True)))
        t0 = time.perf_counter()
        await asyncio.gather(*(one(c, sh[WARM:]) for c, sh in zip(clients, shares, strict=True)))
        seconds = time.perf_counter() - t0
    finally:
        for ch in channels:
            await ch.close(None)
    return sum(len(sh) - WARM for sh in shares) / seconds


async def through_center(center: Any, evs: list[Any]) -> tuple[float, int, str]:
    """Events per second acked over ``STREAMS`` streams; (rate, rejected, first reason)."""
    from ansim.v1 import child_safety_pb2 as cs
    from ansim.v1 import child_safety_pb2_grpc as csg

    md = center.metadata("READER_GATEWAY")
    shares = [evs[i::STREAMS] for i in range(STREAMS)]
    rejected = 0
    first = ""

    async def one(stub: Any, share: list[Any]) -> None:
        nonlocal rejected, first

        async def requests() -> AsyncIterator[Any]:
            for ev in share:
                yield cs.IngestTagEventsRequest(event=ev)

        async for ack in stub.IngestTagEvents(requests(), metadata=md, timeout=600):
            if ack.HasField("error"):
                rejected += 1
                first = first or str(ack.error)

    channels = [center.channel() for _ in range(STREAMS)]
    stubs = [csg.TagEventServiceStub(ch) for ch in channels]
    return await _timed(channels, stubs, shares, one), rejected, first


async def through_submit(center: Any, evs: list[Any]) -> tuple[float, int, str]:
    """Events per second acked by SubmitTagEvents, ``STREAMS`` clients each sending its share in
    calls of ``SUBMIT_BATCH`` events one after another; (rate, rejected, first reason)."""
    from ansim.v1 import child_safety_pb2 as cs
    from ansim.v1 import child_safety_pb2_grpc as csg

    md = center.metadata("READER_GATEWAY")
    shares = [evs[i::STREAMS] for i in range(STREAMS)]
    rejected = 0
    first = ""

    async def one(stub: Any, share: list[Any]) -> None:
        nonlocal rejected, first
        for start in range(0, len(share), SUBMIT_BATCH):
            request = cs.SubmitTagEventsRequest(
                events=share[start : start + SUBMIT_BATCH], request_id=str(uuid.uuid4())
            )
            response = await stub.SubmitTagEvents(request, metadata=md, timeout=600)
            for ack in response.acks:
                if ack.HasField("error"):
                    rejected += 1
                    first = first or str(ack.error)

    channels = [center.channel() for _ in range(STREAMS)]
    stubs = [csg.TagEventServiceStub(ch) for ch in channels]
    return await _timed(channels, stubs, shares, one), rejected, first


async def through_echo(address: str, ca: bytes, evs: list[Any]) -> tuple[float, int, str]:
    """Messages per second through the bench echo's bidirectional stream (one reply per message),
    ``STREAMS`` streams over TLS carrying the same IngestTagEventsRequest bytes: what grpc.aio
    alone costs per message, the ceiling of a one-ack-per-event stream; (rate, 0, "")."""
    from ansim.v1 import child_safety_pb2 as cs

    from bench.echo import STREAM_METHOD

    payloads = [cs.IngestTagEventsRequest(event=ev).SerializeToString() for ev in evs]
    shares = [payloads[i::STREAMS] for i in range(STREAMS)]

    async def one(channel: Any, share: list[bytes]) -> None:
        call = channel.stream_stream(STREAM_METHOD)

        async def requests() -> AsyncIterator[bytes]:
            for p in share:
                yield p

        async for _ in call(requests(), timeout=600):
            pass

    channels = [grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(ca)) for _ in range(STREAMS)]
    return await _timed(channels, channels, shares, one), 0, ""


def _with_cpu(pid: int, n: int, measure: Any) -> tuple[tuple[float, int, str], float]:
    """``measure()``'s result and the center's CPU per event (µs) while it ran."""
    before = cpu_seconds(pid)
    result = measure()
    return result, (cpu_seconds(pid) - before) / n * 1e6


def _note(base: str, cpu_us: float, rejected: int, first: str) -> str:
    note = f"{base}; center CPU {cpu_us:,.0f} µs/event"
    if rejected:
        note += f"; {rejected} rejected, first {first[:120]}"
    return note


def run(ctx: Context) -> list[Row]:
    from reference_server.cli import DEMO_CENTER

    n = ctx.sizes.tag_events
    center_name = f"centers/{DEMO_CENTER}"
    raw = ctx.workdir / "raw.sqlite"
    with demo_center(ctx.workdir / "center") as center:
        if not asyncio.run(serving(center, [SERVICE]))[SERVICE]:
            return [Row("ingest.IngestTagEvents", None, "", status="pending", note=f"{SERVICE} not served")]
        pid = center.process.pid
        base_rates = [raw_sqlite(raw, events(center_name, n), BATCH)]
        evs = events(center_name, n)
        (rate, rejected, first), cpu_us = _with_cpu(pid, n, lambda: asyncio.run(through_center(center, evs)))
        base_rates.append(raw_sqlite(raw, events(center_name, n), BATCH))
        evs = events(center_name, n)
        (b_rate, b_rejected, b_first), b_cpu_us = _with_cpu(
            pid, n, lambda: asyncio.run(through_submit(center, evs))
        )
        base_rates.append(raw_sqlite(raw, events(center_name, n), BATCH))
        pki = center.data_dir / "pki"
        assert center.ca is not None
        with echo_process(pki / "server.pem", pki / "server.key") as (echo_addr, echo_pid):
            evs = events(center_name, n)
            ca = center.ca.read_bytes()
            (e_rate, _, _), e_cpu_us = _with_cpu(
                echo_pid, n, lambda: asyncio.run(through_echo(echo_addr, ca, evs))
            )
        per_row = raw_sqlite(raw, events(center_name, min(n, 2000)), 1)
    baseline = sum(base_rates) / len(base_rates)
    note = _note(f"{STREAMS} streams; raw 1 row/commit {per_row:,.0f}/s", cpu_us, rejected, first)
    b_note = _note(f"{STREAMS} clients, {SUBMIT_BATCH} events per call", b_cpu_us, b_rejected, b_first)
    return [
        Row(
            f"ingest.IngestTagEvents ({n:,} events)",
            rate,
            "events/s",
            baseline,
            f"SQLite {BATCH}/commit",
            Target("ratio", ">=", 0.5, "≥ 50 % of raw"),
            note=note,
            extra={
                "raw_batched_runs": base_rates,
                "raw_one_per_commit": per_row,
                "rejected": rejected,
                "center_cpu_us_per_event": cpu_us,
            },
        ),
        Row(
            f"ingest.SubmitTagEvents ({n:,} events)",
            b_rate,
            "events/s",
            baseline,
            f"SQLite {BATCH}/commit",
            Target("ratio", ">=", 0.5, "≥ 50 % of raw"),
            note=b_note,
            extra={"rejected": b_rejected, "center_cpu_us_per_event": b_cpu_us},
        ),
        Row(
            f"ingest.grpc.aio stream floor ({n:,} messages)",
            e_rate,
            "messages/s",
            baseline,
            f"SQLite {BATCH}/commit",
            note=f"bench echo, {STREAMS} bidirectional streams, one reply per message, the same request "
            f"bytes, no store; echo CPU {e_cpu_us:,.0f} µs/message",
            extra={"echo_cpu_us_per_message": e_cpu_us},
        ),
    ]
