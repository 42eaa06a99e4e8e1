"""Issue 6 §2: nearest cameras over 1.6 M clustered synthetic cameras.

The candidate is ``CameraIndex`` (3-D unit vectors, great-circle metres, tombstones, purpose filter,
results as sorted ``(key, metres)``). The baseline is the naive thing a developer would write
first: a default ``cKDTree`` over raw (lat, lon) degrees, euclidean in degrees, returning bare
indices. Both are called one query at a time from Python, interleaved in blocks.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
from scipy.spatial import cKDTree

from bench.core import Context, Row, Target, median, paired, percentile, stopwatch
from bench.data import camera_points, query_points
from bench.procs import measure

METRES_PER_DEGREE = 111_195.0
K = 10
RADIUS_M = 300.0


_GROWTH = """
import sys
import numpy as np
from bench.core import rss_bytes
from bench.data import camera_points
from scipy.spatial import cKDTree
from reference_server.cameras.spatial_index import CameraIndex
pts = camera_points(int(sys.argv[1]))
latlon = np.column_stack([pts.lats, pts.lons])
before = rss_bytes()
if sys.argv[2] == "index":
    keep = CameraIndex(pts.keys, pts.lats, pts.lons, pts.purposes, background_rebuild=False)
else:
    keep = cKDTree(latlon)
print(rss_bytes() - before)
"""


def _rss_growth(n: int, what: str) -> int:
    """RSS growth of building the index (or the baseline tree) over points already in memory."""
    done = measure([sys.executable, "-c", _GROWTH, str(n), what])
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return int(done.stdout.split()[-1])


def run(ctx: Context) -> list[Row]:
    from reference_server.cameras.spatial_index import CameraIndex

    n = ctx.sizes.cameras
    pts = camera_points(n)
    latlon = np.column_stack([pts.lats, pts.lons])
    ctx.log(f"cameras: {n:,} points; building index and baseline tree")

    # build: alternate candidate and baseline; keep the last of each for the query phase
    repeats = 2 if ctx.sizes.quick else 3
    build_c: list[float] = []
    build_b: list[float] = []
    index = tree = None
    for _ in range(repeats):
        del index, tree
        gc.collect()
        with stopwatch() as t:
            index = CameraIndex(pts.keys, pts.lats, pts.lons, pts.purposes, background_rebuild=False)
        build_c.append(t[0])
        gc.collect()
        with stopwatch() as t:
            tree = cKDTree(latlon)
        build_b.append(t[0])
    assert index is not None and tree is not None
    estimate = index.memory().total
    # memory: in fresh processes (RSS deltas in this one are blurred by freed and reused pages)
    mem_c, mem_b = _rss_growth(n, "index"), _rss_growth(n, "tree")

    qlat, qlon = query_points(pts, ctx.sizes.queries)
    r_deg = RADIUS_M / METRES_PER_DEGREE

    def knn_c(i: int) -> object:
        return index.nearest(qlat[i], qlon[i], K)

    def knn_b(i: int) -> object:
        return tree.query((qlat[i], qlon[i]), k=K)

    def rad_c(i: int) -> object:
        return index.within(qlat[i], qlon[i], RADIUS_M)

    def rad_b(i: int) -> object:
        return tree.query_ball_point((qlat[i], qlon[i]), r_deg)

    ctx.log(f"cameras: {ctx.sizes.queries:,} k={K} and r={RADIUS_M:.0f} m queries each side")
    knn = paired(knn_c, knn_b, ctx.sizes.queries)
    rad = paired(rad_c, rad_b, ctx.sizes.queries)
    hits = [len(index.within(qlat[i], qlon[i], RADIUS_M)) for i in range(min(500, ctx.sizes.queries))]

    us = 1e6
    two_x = Target("ratio", "<=", 2.0, "≤ 2× cKDTree")
    rows = [
        Row(
            f"cameras.knn{K} p50 ({n:,})",
            median(knn[0]) * us,
            "µs",
            median(knn[1]) * us,
            "cKDTree lat/lon",
            two_x,
            extra={"p99_us": percentile(knn[0], 99) * us, "baseline_p99_us": percentile(knn[1], 99) * us},
        ),
        Row(
            f"cameras.radius{RADIUS_M:.0f}m p50 ({n:,})",
            median(rad[0]) * us,
            "µs",
            median(rad[1]) * us,
            "cKDTree lat/lon",
            two_x,
            note=f"median {int(np.median(hits))} hits",
            extra={
                "p99_us": percentile(rad[0], 99) * us,
                "baseline_p99_us": percentile(rad[1], 99) * us,
                "hits_median": float(np.median(hits)),
            },
        ),
        Row(
            f"cameras.index build ({n:,})",
            median(build_c),
            "s",
            median(build_b),
            "cKDTree lat/lon",
            Target("figure", "<=", 5.0, "≤ 5 s"),
            extra={"runs": build_c, "baseline_runs": build_b},
        ),
        Row(
            f"cameras.index memory ({n:,})",
            mem_c / 2**20,
            "MiB",
            mem_b / 2**20,
            "cKDTree lat/lon",
            note=f"RSS growth in a fresh process; index's own estimate {estimate / 2**20:.0f} MiB",
            extra={"estimate_bytes": estimate},
        ),
    ]
    return rows
