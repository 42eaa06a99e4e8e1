"""``ansim demo --national --directory-only``: one directory entry per municipality (250) in a real
directory process, and random SOS locations resolved over gRPC, each checked against
point-in-polygon ground truth (no centers run; see :mod:`.national` for the real-center simulation).

The 250 centers are directory entries (each its municipality's real 2018 boundary, its own
certificate pin and endpoint); resolution is the directory's real ResolveCenter over TLS, verified
with the directory's published key. Ground truth is the municipality whose boundary contains the
point (shapely, original geometry with holes).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from ansim.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from rich.console import Console
from rich.table import Table

from reference_server.demo.cluster import Cluster
from reference_server.demo.console import tls_channel, token
from reference_server.demo.entries import entry, municipalities
from reference_server.domain.directory.geometry import geometry_area
from reference_server.domain.directory.signing import verify_answer
from reference_server.geo.sampling import random_points_in

CONCURRENCY = 32


async def run_directory_only(console: Console, count: int, seed: int = 2026) -> int:
    with tempfile.TemporaryDirectory(prefix="ansim-national-") as root:
        cluster = Cluster.create(Path(root))
        directory = cluster.launch(
            "directory", cluster.config("directory", "국가 안심 디렉터리", role="directory")
        )
        try:
            await directory.wait_ready()
            channel = tls_channel(
                cluster.pki.ca_cert, directory.address, cluster.certs_for("directory").server_name
            )
            stub: Any = directory_pb2_grpc.DirectoryServiceStub(channel)
            admin = token(cluster, common_pb2.ROLE_DIRECTORY_ADMIN, "admins/national")
            began = time.monotonic()
            everything = municipalities()
            for code, municipality in everything.items():
                pin = hashlib.sha256(f"national-{code}".encode()).hexdigest()
                new = entry(
                    f"centers/m{code}",
                    municipality.name[:100],
                    (municipality.name_eng or code)[:100],
                    geometry_area(municipality.geometry),
                    f"m{code}.centers.ansim.test:443",
                    f"m{code}.centers.ansim.test",
                    [pin],
                    municipalities_=[common_pb2.AdministrativeCodes(statistics_code=code)],
                    police="national-112",
                    fire="national-119",
                )
                await stub.CreateCenter(
                    directory_pb2.CreateCenterRequest(center=new, request_id=str(uuid.uuid4())),
                    metadata=admin,
                )
            registered = time.monotonic() - began
            keys = list(
                (await stub.GetDirectoryKeys(directory_pb2.GetDirectoryKeysRequest(), metadata=admin)).keys
            )
            rng = np.random.default_rng(seed)
            codes = sorted(everything)
            picks = rng.choice(len(codes), size=count)
            points: list[tuple[str, float, float]] = []
            for index in picks:
                code = codes[int(index)]
                lons, lats = random_points_in(everything[code].geometry, 1, rng)
                points.append((code, float(lats[0]), float(lons[0])))
            semaphore = asyncio.Semaphore(CONCURRENCY)
            latencies: list[float] = []
            top_ok = listed_ok = 0

            async def route(truth: str, lat: float, lon: float) -> None:
                nonlocal top_ok, listed_ok
                location = common_pb2.Location(latitude=lat, longitude=lon, radius_m=10.0)
                location.fix_time.GetCurrentTime()
                async with semaphore:
                    start = time.monotonic()
                    response = await stub.ResolveCenter(
                        directory_pb2.ResolveCenterRequest(location=location, service="sos"), metadata=admin
                    )
                    latencies.append(time.monotonic() - start)
                answer = verify_answer(response, keys)
                names = [c.center for c in answer.candidates]
                top_ok += names[0] == f"centers/m{truth}"
                listed_ok += f"centers/m{truth}" in names

            await route(*points[0])  # warm-up: the directory indexes the 250 areas once
            latencies.clear()
            top_ok = listed_ok = 0
            began = time.monotonic()
            await asyncio.gather(*(route(*p) for p in points))
            elapsed = time.monotonic() - began
            await channel.close(None)
        finally:
            cluster.stop_all()
    lat_ms = np.array(latencies) * 1000
    table = Table(title="National directory routing (250 entries, real gRPC)")
    table.add_column("measure")
    table.add_column("value")
    table.add_row("centers registered", f"{len(everything)} in {registered:.1f} s")
    table.add_row("random SOS routed", f"{count} in {elapsed:.1f} s ({count / elapsed:.0f}/s)")
    table.add_row("top candidate = ground truth", f"{top_ok}/{count} ({100 * top_ok / count:.1f} %)")
    table.add_row("ground truth among candidates", f"{listed_ok}/{count} ({100 * listed_ok / count:.1f} %)")
    table.add_row(
        "latency p50 / p95 / max",
        f"{np.percentile(lat_ms, 50):.1f} / {np.percentile(lat_ms, 95):.1f} / {lat_ms.max():.1f} ms",
    )
    console.print(table)
    return 0 if listed_ok == count and top_ok >= 0.99 * count else 1
