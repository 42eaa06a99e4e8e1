"""Issue 6 §1: SOS intake, RaiseEmergency on a real ``ansim serve --demo`` process (durable: the
center answers once the emergency is committed), against the bench's bare grpc.aio echo server in
another process, over the same TLS, with a request of the same bytes.

Both sides get the same client: pre-serialised request bytes through a raw unary-unary callable,
so client-side protobuf work does not count against either. Each concurrency level alternates
echo and center in rounds so that both share the machine's noise.

Two loads: the original one, every request with the demo's one APP_USER token — after the first,
each is the same reporter pressing again (EMG-004: her emergency gets a new fix, no new emergency,
no dispatch) — and "new SOS", a reporter per request (tokens from the demo issuer key, verified
once before the timed part), so that each request creates an emergency that is routed, gets its
cameras and is dispatched. The new-SOS load runs second, so the first keeps its earlier meaning.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import grpc.aio

from bench.center import demo_center, echo_process, serving
from bench.core import REPO_ROOT, Context, Row, Target
from bench.load import LoadResult, closed_loop, secure
from bench.proc_cpu import cpu_seconds

SERVICE = "ansim.v1.EmergencyService"
METHOD = f"/{SERVICE}/RaiseEmergency"
EXAMPLE = REPO_ROOT / "spec/examples/valid/ansim.v1.RaiseEmergencyRequest/app-sos-jongno.json"
ROUNDS = 3
SPREAD_M = 300.0  # requests are spread uniformly over a disk of this radius (inside 종로구)
SEED = 6
METRES_PER_DEG_LAT = 111_195.0
WARMUP = 20  # closed_loop's default: calls before the timed part, counted in CPU per call


def _identity(b: bytes) -> bytes:
    return b


def request_bytes(parent: str, count: int) -> list[bytes]:
    """``count`` distinct RaiseEmergencyRequests from the spec's example: a fresh request_id and a
    point of their own, drawn (seeded) within ``SPREAD_M`` of the example's, so that no request
    is answered from what the center remembers of an earlier one at the very same point (a real
    reporter's fixes differ; the center's nearby-camera memo would otherwise flatter the figure).
    A double is fixed-width on the wire, so every request keeps the example's size."""
    from ansim.v1 import emergency_pb2
    from google.protobuf import json_format

    template = json_format.Parse(EXAMPLE.read_text(encoding="utf-8"), emergency_pb2.RaiseEmergencyRequest())
    template.parent = parent
    lat0, lon0 = template.location.latitude, template.location.longitude
    rng = random.Random(SEED)
    metres_per_deg_lon = METRES_PER_DEG_LAT * math.cos(math.radians(lat0))
    out = []
    for _ in range(count):
        template.request_id = str(uuid.uuid4())
        distance, bearing = SPREAD_M * math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * math.pi)
        template.location.latitude = lat0 + distance * math.cos(bearing) / METRES_PER_DEG_LAT
        template.location.longitude = lon0 + distance * math.sin(bearing) / metres_per_deg_lon
        out.append(template.SerializeToString())
    return out


def reporter_tokens(data_dir: Path, count: int) -> list[str]:
    """Bearer tokens of ``count`` distinct APP_USER reporters, signed with the demo issuer's key."""
    from ansim.v1 import common_pb2

    from reference_server.cli import DEMO_ISSUER
    from reference_server.security.tokens import TokenIssuer

    issuer = TokenIssuer.create(DEMO_ISSUER, data_dir / "pki" / "token-issuer.key")
    return [issuer.issue(f"users/bench-sos-{i}", common_pb2.ROLE_APP_USER) for i in range(count)]


def _cpu_row(c: int, kind: str, center_cpu: float, echo_cpu: float) -> Row:
    """Server CPU (user + system, /proc) per call, warm-up calls included on both sides."""
    return Row(
        f"sos.RaiseEmergency{kind} server CPU per call, {c} client(s)",
        center_cpu * 1e6,
        "µs",
        echo_cpu * 1e6,
        "grpc echo",
        note="center vs echo process, /proc utime+stime over the rounds",
    )


def _row_pair(c: int, center: LoadResult, echo: LoadResult, kind: str = "") -> list[Row]:
    if not center.requests:
        return [
            Row(f"sos.RaiseEmergency{kind}, {c} client(s)", None, "", status="error", note=center.first_error)
        ]
    note = f"p50 {center.p50_ms:.2f} ms vs echo {echo.p50_ms:.2f} ms"
    if center.errors:
        note += f"; {center.errors} errors, first {center.first_error}"
    return [
        Row(
            f"sos.RaiseEmergency{kind} throughput, {c} client(s)",
            center.throughput,
            "req/s",
            echo.throughput,
            "grpc echo",
            Target("ratio", ">=", 0.6, "≥ 60 % of echo"),
            extra={"errors": center.errors},
        ),
        Row(
            f"sos.RaiseEmergency{kind} p99, {c} client(s)",
            center.p99_ms,
            "ms",
            echo.p99_ms,
            "grpc echo",
            Target("ratio", "<=", 2.0, "≤ 2× echo"),
            note=note,
            extra={"p50_ms": center.p50_ms, "echo_p50_ms": echo.p50_ms},
        ),
    ]


async def _measure(
    ctx: Context,
    center_addr: str,
    echo_addr: str,
    ca: bytes,
    token: str,
    live: bool,
    data_dir: Path,
    pids: dict[str, int],
) -> list[Row]:
    from reference_server.cli import DEMO_CENTER

    creds = grpc.ssl_channel_credentials(ca)
    metadata = (("authorization", f"Bearer {token}"),)
    total = ctx.sizes.sos_requests
    # every SOS is a new request (fresh request_id); the echo may reuse bytes
    needed = sum(max(c, total // ROUNDS) * ROUNDS + 100 + c for c in ctx.sizes.sos_concurrency)
    payloads = request_bytes(f"centers/{DEMO_CENTER}", needed)

    def caller(
        method: str, md: tuple[tuple[str, str], ...]
    ) -> Callable[[grpc.aio.Channel, int], Awaitable[object]]:
        cursor = itertools.cycle(payloads)

        async def call(ch: grpc.aio.Channel, i: int) -> object:
            fn = ch.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
            return await fn(next(cursor), metadata=md, timeout=30)

        return call

    echo_call = caller("/bench.Echo/Echo", metadata)
    center_call = caller(METHOD, metadata)
    rows: list[Row] = []
    loads = [("", center_call)]
    if live:
        loads.append((" new SOS", await _new_sos_caller(ctx, center_addr, creds, data_dir)))
    for (kind, center_call), c in itertools.product(loads, ctx.sizes.sos_concurrency):
        per_round = max(c, total // ROUNDS)
        results: dict[str, list[LoadResult]] = {"echo": [], "center": []}
        cpu = {"echo": 0.0, "center": 0.0}
        calls = {"echo": 0, "center": 0}
        for r in range(ROUNDS):
            sides = [("echo", echo_addr, echo_call), ("center", center_addr, center_call)]
            if not live:
                sides = sides[:1]
            for side, addr, call in sides if r % 2 == 0 else sides[::-1]:
                before = cpu_seconds(pids[side])
                res = await closed_loop(secure(addr, creds), call, c, per_round, warmup=WARMUP)
                cpu[side] += cpu_seconds(pids[side]) - before
                calls[side] += res.requests + res.errors + c * max(1, WARMUP // c)
                results[side].append(res)
        echo = _merge(results["echo"])
        if not live:
            rows.append(
                Row(
                    f"sos.RaiseEmergency, {c} client(s)",
                    None,
                    "",
                    status="pending",
                    note=f"{SERVICE} not served yet; echo measured {echo.throughput:,.0f} req/s, "
                    f"p50 {echo.p50_ms:.2f} ms, p99 {echo.p99_ms:.2f} ms",
                )
            )
            continue
        rows += _row_pair(c, _merge(results["center"]), echo, kind)
        rows.append(_cpu_row(c, kind, cpu["center"] / calls["center"], cpu["echo"] / calls["echo"]))
    return rows


async def _new_sos_caller(
    ctx: Context, center_addr: str, creds: grpc.ChannelCredentials, data_dir: Path
) -> Callable[[grpc.aio.Channel, int], Awaitable[object]]:
    """RaiseEmergency with a new reporter (and request) per call; each reporter's token is
    verified once here first (a GetEmergency of nothing), so the timed part is SOS intake."""
    from ansim.v1 import emergency_pb2

    from reference_server.cli import DEMO_CENTER

    needed = sum(
        max(c, ctx.sizes.sos_requests // ROUNDS) * ROUNDS + 100 + c for c in ctx.sizes.sos_concurrency
    )
    tokens = reporter_tokens(data_dir, needed)
    payloads = request_bytes(f"centers/{DEMO_CENTER}", needed)
    pairs = [(p, (("authorization", f"Bearer {t}"),)) for p, t in zip(payloads, tokens, strict=True)]
    probe = emergency_pb2.GetEmergencyRequest(
        name=f"centers/{DEMO_CENTER}/emergencies/none"
    ).SerializeToString()
    warm = itertools.cycle(pairs)

    async def verify_once(ch: grpc.aio.Channel, i: int) -> object:
        fn = ch.unary_unary("/ansim.v1.EmergencyService/GetEmergency", _identity, _identity)
        return await fn(probe, metadata=next(warm)[1], timeout=30)  # NOT_FOUND, after auth

    await closed_loop(secure(center_addr, creds), verify_once, 20, len(pairs), warmup=0)
    cursor = iter(pairs)

    async def call(ch: grpc.aio.Channel, i: int) -> object:
        payload, md = next(cursor)
        fn = ch.unary_unary(METHOD, request_serializer=_identity, response_deserializer=_identity)
        return await fn(payload, metadata=md, timeout=30)

    return call


def _merge(results: list[LoadResult]) -> LoadResult:
    latencies = [x for r in results for x in r.latencies]
    return LoadResult(
        results[0].clients,
        sum(r.requests for r in results),
        sum(r.seconds for r in results),
        latencies,
        sum(r.errors for r in results),
        next((r.first_error for r in results if r.first_error), ""),
    )


def run(ctx: Context) -> list[Row]:
    with demo_center(ctx.workdir / "center") as center:
        live = asyncio.run(serving(center, [SERVICE]))[SERVICE]
        pki: Path = center.data_dir / "pki"
        assert center.ca is not None
        with echo_process(pki / "server.pem", pki / "server.key") as (echo_addr, echo_pid):
            return asyncio.run(
                _measure(
                    ctx,
                    center.address,
                    echo_addr,
                    center.ca.read_bytes(),
                    center.token("APP_USER"),
                    live,
                    center.data_dir,
                    {"center": center.process.pid, "echo": echo_pid},
                )
            )
