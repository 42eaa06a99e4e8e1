"""Issue 6 §2 (over gRPC) and §9: a center with 1.6 M cameras in its store.

The data directory is made once per size with ``ansim cameras import`` (cached in bench/.cache/ and
copied per run, since a center writes into its data directory), then a demo center starts on it.

* SearchNearbyCameras (operator, point origin, 300 m, limit 10) at one client against the echo
  server with a request of the same bytes; the reply carries up to 10 cameras, so part of the
  ratio is the response itself.
* Server RSS after start-up and the queries, against a demo center with only the demo inventory,
  started in the same run (target ≤ 500 MB, absolute).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from bench.center import demo_center, echo_server, serving
from bench.core import Context, Row, Target, median, percentile, rss_bytes
from bench.data import camera_points, imported_data_dir, query_points
from bench.load import LoadResult, closed_loop, secure

SERVICE = "ansim.v1.CameraService"
RADIUS_M = 300.0
LIMIT = 10


def _identity(b: bytes) -> bytes:
    return b


def search_requests(parent: str, qlat: list[float], qlon: list[float]) -> list[bytes]:
    from ansim.v1 import camera_pb2

    out = []
    for lat, lon in zip(qlat, qlon, strict=True):
        req = camera_pb2.SearchNearbyCamerasRequest(parent=parent, radius_m=RADIUS_M, limit=LIMIT)
        req.point.latitude, req.point.longitude = lat, lon
        out.append(req.SerializeToString())
    return out


async def _search(center: Any, echo_addr: str, payloads: list[bytes]) -> tuple[list[float], list[float], str]:
    creds = grpc.ssl_channel_credentials(center.ca.read_bytes())
    md = center.metadata("CENTER_OPERATOR")

    def caller(method: str) -> Any:
        async def call(ch: grpc.aio.Channel, i: int) -> object:
            fn = ch.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
            return await fn(payloads[i % len(payloads)], metadata=md, timeout=30)

        return call

    results: dict[str, list[LoadResult]] = {"echo": [], "search": []}
    per_round = max(1, len(payloads) // 3)
    for r in range(3):
        sides = [
            ("echo", echo_addr, caller("/bench.Echo/Echo")),
            ("search", center.address, caller(f"/{SERVICE}/SearchNearbyCameras")),
        ]
        for side, addr, call in sides if r % 2 == 0 else sides[::-1]:
            results[side].append(await closed_loop(secure(addr, creds), call, 1, per_round))
    first_error = next((r.first_error for r in results["search"] if r.first_error), "")
    return (
        [x for r in results["search"] for x in r.latencies],
        [x for r in results["echo"] for x in r.latencies],
        first_error,
    )


def _settled_rss(pid: int, seconds: float = 2.0) -> int:
    """RSS once it stopped growing (a center may still be building its index after READY)."""
    last, deadline = -1, time.monotonic() + 120
    while time.monotonic() < deadline:
        now = rss_bytes(pid)
        if now == last:
            return now
        last = now
        time.sleep(seconds)
    return last


def run(ctx: Context) -> list[Row]:
    from reference_server.cli import DEMO_CENTER

    n = ctx.sizes.cameras
    source = imported_data_dir(n, ctx.log)
    data_dir = ctx.workdir / "center"
    shutil.copytree(source, data_dir)
    rows: list[Row] = []

    # the baseline center first, so the two never run at the same time
    with demo_center(ctx.workdir / "empty") as empty:
        empty_rss = _settled_rss(empty.process.pid)

    t0 = time.perf_counter()
    with demo_center(data_dir) as center:
        ready_s = time.perf_counter() - t0
        if not asyncio.run(serving(center, [SERVICE]))[SERVICE]:
            return [
                Row("server.SearchNearbyCameras", None, "", status="pending", note=f"{SERVICE} not served")
            ]
        loaded_rss = _settled_rss(center.process.pid)
        pts = camera_points(n)
        qlat, qlon = query_points(pts, 300 if ctx.sizes.quick else 3000)
        payloads = search_requests(f"centers/{DEMO_CENTER}", qlat, qlon)
        pki: Path = center.data_dir / "pki"
        with echo_server(pki / "server.pem", pki / "server.key") as echo_addr:
            search, echo, error = asyncio.run(_search(center, echo_addr, payloads))
        after_rss = rss_bytes(center.process.pid)

    if search:
        rows.append(
            Row(
                f"server.SearchNearbyCameras p50 r={RADIUS_M:.0f} m limit {LIMIT} ({n:,})",
                median(search) * 1e3,
                "ms",
                median(echo) * 1e3,
                "grpc echo",
                note=f"p99 {percentile(search, 99) * 1e3:.2f} ms" + (f"; errors: {error}" if error else ""),
                extra={"p99_ms": percentile(search, 99) * 1e3, "echo_p99_ms": percentile(echo, 99) * 1e3},
            )
        )
    else:
        rows.append(Row("server.SearchNearbyCameras", None, "", status="error", note=error))
    mib = 2**20
    rows.append(
        Row(
            f"server.RSS with {n:,} cameras",
            max(loaded_rss, after_rss) / mib,
            "MiB",
            empty_rss / mib,
            "demo center, demo inventory",
            Target("figure", "<=", 500 * 1e6 / mib, "≤ 500 MB"),
            note=f"ready after {ready_s:.1f} s",
            extra={"ready_s": ready_s, "rss_after_start": loaded_rss, "rss_after_queries": after_rss},
        )
    )
    return rows
