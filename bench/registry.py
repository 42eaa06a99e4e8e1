"""Benchmarks by name, in the issue's order (``--only`` takes these names)."""

from __future__ import annotations

from bench import (
    bench_cameras,
    bench_conformance,
    bench_fanout,
    bench_import,
    bench_ingest,
    bench_json,
    bench_routing,
    bench_server,
    bench_sos,
)
from bench.core import Benchmark

BENCHMARKS: dict[str, Benchmark] = {
    "sos": bench_sos.run,  # 1
    "cameras": bench_cameras.run,  # 2, in process
    "server": bench_server.run,  # 2 over gRPC, and 9
    "ingest": bench_ingest.run,  # 3
    "fanout": bench_fanout.run,  # 4
    "json": bench_json.run,  # 5
    "import": bench_import.run,  # 6
    "routing": bench_routing.run,  # 7
    "conformance": bench_conformance.run,  # 8
}
