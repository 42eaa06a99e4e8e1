"""Issue 6 §7: cross-region routing over the 250 real service areas (2018 municipality boundaries).

* In process: ``ServiceAreaIndex.locate`` with a 50 m uncertainty (containing area plus every area
  whose border is within the radius, with overlap shares) against the naive shapely way, an
  ``STRtree`` ``intersects`` query with a 50 m circle polygon (no ranking, no overlap).
* Over gRPC: a national directory (``ansim serve --role directory``) with one center registered
  per municipality (its real boundary as the service area); ResolveCenter latency at one client
  against the echo server with a request of the same bytes.
* An SOS forwarded between two centers vs a same-center SOS (:mod:`bench.forwarding`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import grpc
import grpc.aio

from bench.center import demo_center, echo_server, serving
from bench.core import REPO_ROOT, Context, Row, median, paired, percentile
from bench.data import camera_points, query_points
from bench.forwarding import forwarded_vs_local
from bench.load import LoadResult, closed_loop, secure

UNCERTAINTY_M = 50.0
DIRECTORY = "ansim.v1.DirectoryService"
FEDERATION = "ansim.v1.FederationService"
EXAMPLES = REPO_ROOT / "spec/examples/valid"
MAX_RING = 10_000
MAX_POLYGONS = 500


def _in_process(ctx: Context, qlat: list[float], qlon: list[float]) -> list[Row]:
    import shapely

    from reference_server.geo.local_metric import metres_per_degree
    from reference_server.geo.municipalities import load_municipalities
    from reference_server.geo.service_areas import municipality_index

    index = municipality_index()
    geoms = [m.geometry for m in load_municipalities()]
    tree = shapely.STRtree(geoms)

    def cand(i: int) -> object:
        return index.locate(qlat[i], qlon[i], UNCERTAINTY_M)

    def base(i: int) -> object:
        kx, ky = metres_per_degree(qlat[i])
        disk = shapely.Point(qlon[i], qlat[i]).buffer(1.0, 16)
        disk = shapely.affinity.scale(disk, UNCERTAINTY_M / kx, UNCERTAINTY_M / ky)
        return tree.query(disk, predicate="intersects")

    c, b = paired(cand, base, len(qlat))
    us = 1e6
    return [
        Row(
            f"routing.locate r={UNCERTAINTY_M:.0f} m p50 ({len(geoms)} areas)",
            median(c) * us,
            "µs",
            median(b) * us,
            "STRtree intersects",
            extra={"p99_us": percentile(c, 99) * us},
        )
    ]


def _polygons(geometry: Any) -> list[dict[str, Any]]:
    parts = sorted(getattr(geometry, "geoms", [geometry]), key=lambda p: -p.area)[:MAX_POLYGONS]
    rings = []
    for part in parts:
        coords = list(part.exterior.coords)[:-1]
        tolerance = 1e-5
        while len(coords) > MAX_RING:
            coords = list(part.exterior.simplify(tolerance).coords)[:-1]
            tolerance *= 2
        if len(coords) >= 3:
            rings.append({"vertices": [{"latitude": y, "longitude": x} for x, y in coords]})
    return rings


def center_requests() -> list[bytes]:
    """A CreateCenterRequest per municipality, from the spec's example with that area's boundary."""
    from ansim.v1 import directory_pb2
    from google.protobuf import json_format

    from reference_server.geo.municipalities import load_municipalities

    example = next((EXAMPLES / "ansim.v1.CreateCenterRequest").glob("*.json"))
    template = json.loads(example.read_text(encoding="utf-8"))
    out = []
    for m in load_municipalities():
        code = m.statistics_code.value
        doc = json.loads(json.dumps(template))
        center = doc["center"]
        center["name"] = f"centers/m-{code}"
        center["displayNameKo"] = f"{m.name} 통합관제센터"
        center["municipalities"] = [dict(center["municipalities"][0], statisticsCode=code)]
        center["serviceArea"] = {"polygons": _polygons(m.geometry)}
        center["certificates"][0]["sha256Fingerprint"] = hashlib.sha256(code.encode()).hexdigest()
        doc["requestId"] = str(uuid.uuid4())
        out.append(json_format.ParseDict(doc, directory_pb2.CreateCenterRequest()).SerializeToString())
    return out


def resolve_requests(qlat: list[float], qlon: list[float]) -> list[bytes]:
    from ansim.v1 import directory_pb2
    from google.protobuf import json_format

    example = (EXAMPLES / "ansim.v1.ResolveCenterRequest/anyang-station.json").read_text(encoding="utf-8")
    template = json_format.Parse(example, directory_pb2.ResolveCenterRequest())
    out = []
    for lat, lon in zip(qlat, qlon, strict=True):
        template.location.latitude, template.location.longitude = lat, lon
        template.location.radius_m = UNCERTAINTY_M
        out.append(template.SerializeToString())
    return out


def _identity(b: bytes) -> bytes:
    return b


async def _over_grpc(ctx: Context, center: Any, echo_addr: str, qlat: list[float], qlon: list[float]) -> Row:
    creds = grpc.ssl_channel_credentials(center.ca.read_bytes())
    admin = center.metadata("DIRECTORY_ADMIN")
    user = center.metadata("APP_USER")
    async with grpc.aio.secure_channel(center.address, creds) as ch:
        create = ch.unary_unary(f"/{DIRECTORY}/CreateCenter", _identity, _identity)
        for req in center_requests():
            await create(req, metadata=admin, timeout=60)
    payloads = resolve_requests(qlat, qlon)

    def caller(method: str) -> Any:
        async def call(ch: grpc.aio.Channel, i: int) -> object:
            fn = ch.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
            return await fn(payloads[i % len(payloads)], metadata=user, timeout=30)

        return call

    results: dict[str, list[LoadResult]] = {"echo": [], "resolve": []}
    per_round = max(1, len(payloads) // 3)
    for r in range(3):
        sides = [
            ("echo", echo_addr, caller("/bench.Echo/Echo")),
            ("resolve", center.address, caller(f"/{DIRECTORY}/ResolveCenter")),
        ]
        for side, addr, call in sides if r % 2 == 0 else sides[::-1]:
            results[side].append(await closed_loop(secure(addr, creds), call, 1, per_round))
    res = [x for r in results["resolve"] for x in r.latencies]
    echo = [x for r in results["echo"] for x in r.latencies]
    errors = sum(r.errors for r in results["resolve"])
    if not res:
        return Row("routing.ResolveCenter", None, "", status="error", note=results["resolve"][0].first_error)
    note = f"p99 {percentile(res, 99) * 1e3:.2f} ms" + (f"; {errors} errors" if errors else "")
    return Row(
        "routing.ResolveCenter p50, 1 client (250 centers)",
        median(res) * 1e3,
        "ms",
        median(echo) * 1e3,
        "grpc echo",
        note=note,
        extra={"p99_ms": percentile(res, 99) * 1e3, "errors": errors},
    )


def run(ctx: Context) -> list[Row]:
    pts = camera_points(ctx.sizes.cameras)
    qlat, qlon = query_points(pts, ctx.sizes.routing_queries)
    rows = _in_process(ctx, qlat, qlon)
    with demo_center(ctx.workdir / "directory", "--role", "directory") as directory:
        if not asyncio.run(serving(directory, [DIRECTORY]))[DIRECTORY]:
            rows.append(
                Row("routing.ResolveCenter", None, "", status="pending", note=f"{DIRECTORY} not served")
            )
        else:
            pki = directory.data_dir / "pki"
            with echo_server(pki / "server.pem", pki / "server.key") as echo_addr:
                n = min(len(qlat), 300 if ctx.sizes.quick else 3000)
                rows.append(asyncio.run(_over_grpc(ctx, directory, echo_addr, qlat[:n], qlon[:n])))
    rows.append(forwarded_vs_local(ctx))
    return rows
