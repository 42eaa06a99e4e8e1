"""Benchmarks by name, in the issue's order (``--only`` takes these names)."""

from __future__ import annotations

from bench import bench_cameras, bench_import, bench_json, bench_routing, bench_server, bench_sos
from bench.core import Benchmark

BENCHMARKS: dict[str, Benchmark] = {
    "sos": bench_sos.run,
    "cameras": bench_cameras.run,
    "server": bench_server.run,
    "json": bench_json.run,
    "import": bench_import.run,
    "routing": bench_routing.run,
}
