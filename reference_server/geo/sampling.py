"""Deterministic random points inside service areas, for synthetic camera inventories.

Everything is seeded: the same arguments give the same points on every platform numpy supports.
Points are drawn uniformly in longitude/latitude, which within one municipality differs from
uniform-by-area by under 1 % (cos φ changes little over an area's extent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from reference_server.geo.local_metric import metres_per_degree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

_MAX_ROUNDS = 200


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_points_in(
    geometry: BaseGeometry, n: int, seed: int | np.random.Generator = 0
) -> tuple[FloatArray, FloatArray]:
    """``n`` uniform random points inside ``geometry`` (x = lon, y = lat): (lons, lats).

    Vectorised rejection sampling from the bounding box against the prepared geometry.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = _rng(seed)
    shapely.prepare(geometry)
    xmin, ymin, xmax, ymax = geometry.bounds
    box_area = (xmax - xmin) * (ymax - ymin)
    efficiency = max(geometry.area / box_area, 0.01) if box_area > 0 else 1.0
    lons: list[FloatArray] = []
    lats: list[FloatArray] = []
    have = 0
    for _ in range(_MAX_ROUNDS):
        if have >= n:
            break
        batch = int((n - have) / efficiency * 1.25) + 16
        xs = rng.uniform(xmin, xmax, batch)
        ys = rng.uniform(ymin, ymax, batch)
        keep = shapely.contains_xy(geometry, xs, ys)
        lons.append(xs[keep])
        lats.append(ys[keep])
        have += int(np.count_nonzero(keep))
    else:
        if have < n:
            raise RuntimeError("rejection sampling did not converge (degenerate geometry?)")
    return np.concatenate(lons)[:n] if lons else np.empty(0), np.concatenate(lats)[:n] if lats else np.empty(
        0
    )


def _gaussian_points_in(
    geometry: BaseGeometry,
    centres: tuple[FloatArray, FloatArray],
    sigma_deg: tuple[FloatArray, FloatArray],
    shares: FloatArray,
    n: int,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Points around ``centres`` (normal, per-centre sigma), redrawn until inside ``geometry``."""
    if n == 0:
        return np.empty(0), np.empty(0)
    lons: list[FloatArray] = []
    lats: list[FloatArray] = []
    have = 0
    for _ in range(_MAX_ROUNDS):
        if have >= n:
            break
        batch = int((n - have) * 1.5) + 16
        which = rng.choice(shares.size, size=batch, p=shares)
        xs = centres[0][which] + rng.standard_normal(batch) * sigma_deg[0][which]
        ys = centres[1][which] + rng.standard_normal(batch) * sigma_deg[1][which]
        keep = shapely.contains_xy(geometry, xs, ys)
        lons.append(xs[keep])
        lats.append(ys[keep])
        have += int(np.count_nonzero(keep))
    if have < n:  # clusters mostly at sea (tiny islands): fill up uniformly
        extra = random_points_in(geometry, n - have, rng)
        lons.append(extra[0])
        lats.append(extra[1])
    return np.concatenate(lons)[:n], np.concatenate(lats)[:n]


@dataclass(frozen=True, slots=True)
class ClusteredPoints:
    """Generated points, grouped by area in input order."""

    lons: FloatArray
    lats: FloatArray
    area_index: IntArray  # index into the ``geometries`` argument


def clustered_points(
    geometries: Sequence[BaseGeometry],
    weights: Sequence[float] | FloatArray,
    n: int,
    *,
    seed: int = 0,
    centres_per_area: tuple[int, int] = (2, 6),
    cluster_spread_m: tuple[float, float] = (300.0, 2_000.0),
    background_share: float = 0.25,
) -> ClusteredPoints:
    """``n`` points over all areas, each area's count proportional to its weight.

    Within an area, ``background_share`` of the points are uniform; the rest fall around a few
    random centres (town centres, stations) with a normal spread between the given bounds,
    capped at a quarter of the area's size so small districts stay clustered.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(geometries),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per geometry, not all zero")
    if not 0.0 <= background_share <= 1.0:
        raise ValueError("background_share must be within [0, 1]")
    counts = np.random.default_rng(seed).multinomial(n, w / w.sum())
    out_lon = np.empty(n, dtype=np.float64)
    out_lat = np.empty(n, dtype=np.float64)
    out_area = np.empty(n, dtype=np.int32)
    pos = 0
    for i, (geom, count) in enumerate(zip(geometries, counts.tolist(), strict=True)):
        if count == 0:
            continue
        rng = np.random.default_rng([seed, i])  # per-area stream: areas are independent
        n_bg = int(rng.binomial(count, background_share))
        n_cl = count - n_bg
        bg = random_points_in(geom, n_bg, rng)
        n_centres = int(rng.integers(centres_per_area[0], centres_per_area[1] + 1))
        centres = random_points_in(geom, n_centres, rng)
        kx, ky = metres_per_degree(float(np.mean(centres[1])))
        size_m = math.sqrt(geom.area * kx * ky)
        spread = rng.uniform(*cluster_spread_m, n_centres)
        spread = np.minimum(spread, max(size_m / 4.0, 50.0))
        shares = rng.dirichlet(np.full(n_centres, 2.0))
        cl = _gaussian_points_in(geom, centres, (spread / kx, spread / ky), shares, n_cl, rng)
        end = pos + count
        out_lon[pos : pos + n_bg], out_lat[pos : pos + n_bg] = bg
        out_lon[pos + n_bg : end], out_lat[pos + n_bg : end] = cl
        out_area[pos:end] = i
        pos = end
    return ClusteredPoints(out_lon, out_lat, out_area)
