"""What every benchmark shares: result rows, targets, paired timing, percentiles, memory probes.

A benchmark never decides pass/fail from an absolute time measured on its own: shared machines are
noisy, so each one measures its baseline in the same run, interleaved where it can, and reports
the ratio. Targets are evaluated on the ratio, or on an absolute figure only where the issue sets
an absolute budget (build ≤ 5 s, import < 60 s, RSS ≤ 500 MB, p99 ≤ 100 ms); the run still exits 0.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(__file__).resolve().parent / ".cache"

Status = Literal["ok", "pending", "error"]


@dataclass(frozen=True)
class Target:
    """``figure`` (or ``ratio``) compared with ``value`` by ``op``."""

    on: Literal["ratio", "figure"]
    op: Literal["<=", ">=", "<"]
    value: float
    label: str  # as printed, e.g. "≥ 60 % of echo" or "≤ 5 s"

    def met(self, figure: float | None, ratio: float | None) -> bool | None:
        x = ratio if self.on == "ratio" else figure
        if x is None or math.isnan(x):
            return None
        if self.op == "<=":
            return x <= self.value
        if self.op == "<":
            return x < self.value
        return x >= self.value


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is always figure / baseline in the figure's unit, so "≤ 2×" reads as ratio ≤ 2 for a
    latency and "≥ 60 %" as ratio ≥ 0.6 for a throughput.
    """

    benchmark: str
    figure: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    status: Status = "ok"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.baseline:
            return None
        return self.figure / self.baseline

    @property
    def met(self) -> bool | None:
        if self.status != "ok" or self.target is None:
            return None
        return self.target.met(self.figure, self.ratio)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["met"] = self.met
        out["target"] = None if self.target is None else asdict(self.target)
        return out


def pending(benchmark: str, why: str) -> Row:
    return Row(benchmark, None, "", status="pending", note=why)


@dataclass(frozen=True)
class Sizes:
    """Problem sizes: the issue's (default) or a smoke run's (``--quick``)."""

    quick: bool
    cameras: int
    queries: int
    csv_rows: int
    sos_requests: int
    sos_concurrency: tuple[int, ...]
    tag_events: int
    subscribers: int
    fanout_rounds: int
    json_rounds: int
    routing_queries: int

    @staticmethod
    def for_run(quick: bool) -> Sizes:
        if quick:
            return Sizes(True, 50_000, 1_000, 50_000, 300, (1, 10), 2_000, 50, 5, 3, 500)
        return Sizes(False, 1_600_000, 10_000, 1_600_000, 3_000, (1, 50), 10_000, 1_000, 20, 10, 5_000)


@dataclass
class Context:
    sizes: Sizes
    workdir: Path
    log: Callable[[str], None]


Benchmark = Callable[[Context], list[Row]]

# -- statistics ------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``samples``."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50)


def paired(
    candidate: Callable[[int], object],
    baseline: Callable[[int], object],
    n: int,
    *,
    block: int = 100,
    warmup: int = 50,
) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``candidate(i)`` and ``baseline(i)`` for i in range(n), interleaved in blocks
    so that both see the same machine noise. GC is paused during timed blocks."""
    for i in range(min(warmup, n)):
        candidate(i)
        baseline(i)
    cand: list[float] = []
    base: list[float] = []
    clock = time.perf_counter
    was_enabled = gc.isenabled()
    try:
        for start in range(0, n, block):
            stop = min(n, start + block)
            gc.collect()
            gc.disable()
            # alternate which side goes first so neither always gets the warmer caches
            order = ((cand, candidate), (base, baseline))
            if (start // block) % 2:
                order = order[::-1]
            for samples, fn in order:
                for i in range(start, stop):
                    t0 = clock()
                    fn(i)
                    samples.append(clock() - t0)
            if was_enabled:
                gc.enable()
    finally:
        if was_enabled:
            gc.enable()
    return cand, base


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    out: list[float] = []
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - t0)


# -- memory ----------------------------------------------------------------------------------


def _status_kib(pid: int | str, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int | str = "self") -> int:
    """Current resident set size of a process (Linux)."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int | str = "self") -> int:
    """High-water resident set size of a process (Linux)."""
    return _status_kib(pid, "VmHWM") * 1024


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
