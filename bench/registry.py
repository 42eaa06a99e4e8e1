"""Benchmarks by name, in the issue's order (``--only`` takes these names)."""

from __future__ import annotations

from bench import bench_cameras, bench_import, bench_json
from bench.core import Benchmark

BENCHMARKS: dict[str, Benchmark] = {
    "cameras": bench_cameras.run,
    "json": bench_json.run,
    "import": bench_import.run,
}
