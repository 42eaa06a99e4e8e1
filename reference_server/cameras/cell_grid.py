"""A latitude/longitude cell grid that narrows a small-radius camera query to a few array slices.

Points are ordered by cell, cells row-major (latitude rows, longitude columns), so the cells of
one row that a ball overlaps are one contiguous slice of the ordered arrays. Rows are ≈ 330 m
tall, so a 300 m ball touches 2–4 of them; columns are narrow (≈ 9 m), so a row's slice is hardly
wider than the ball and few points are measured in vain. ``near`` gathers, for a query point and
radius, the rows of the ordered arrays in those slices: every point within that great-circle
distance and some farther ones (the caller measures the exact distances). It declines (returns
``None``) where a few slices cannot cover the ball — large radii, a ball containing a pole or
crossing the antimeridian — and the caller then asks its tree.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

CELL_LAT_DEG = 0.003  # ≈ 330 m
CELL_LON_DEG = 0.0001  # ≈ 9 m at 37° N: a row's slice is the ball's width (0.004° measured 1.5× more)
_COLUMNS = math.ceil(360.0 / CELL_LON_DEG) + 1
_MAX_ROWS = 4  # more rows than this and the tree is the better tool
_SHIFT = 3
BLOCK = 1 << _SHIFT  # points per kept cell id (see CellGrid)
_MARGIN_DEG = 1e-9  # covers rounding in the degrees recovered from unit vectors
_HALF_PI = math.pi / 2
# local names: near() runs once per radius query, where each attribute lookup shows
_radians, _degrees, _asin, _sin, _cos, _floor = (
    math.radians,
    math.degrees,
    math.asin,
    math.sin,
    math.cos,
    math.floor,
)
_concatenate = np.concatenate


def _cell_ids(lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    rows = np.floor((lat_deg + 90.0) / CELL_LAT_DEG).astype(np.int64)
    cols = np.floor((lon_deg + 180.0) / CELL_LON_DEG).astype(np.int64)
    return rows * _COLUMNS + cols


class CellGrid:
    """Cell order of a set of unit vectors, and the slices of that order a ball can touch.

    Only every ``BLOCK``-th cell id of the order is kept (the last of each block of ``BLOCK``
    points): a slice found by searching these marks starts and ends on a block boundary, so it
    holds up to ``2 · BLOCK`` points more than the cells asked for — which the caller's exact
    distances discard — while the search runs over an array an eighth of the size, mostly in
    cache (searching every id cost ≈ 3.5 µs per query in cache misses, the marks ≈ 2 µs).
    """

    __slots__ = ("marks",)

    def __init__(self, marks: npt.NDArray[np.int64]) -> None:
        self.marks = marks  # cell id of points BLOCK - 1, 2·BLOCK - 1, … of the cell order

    @staticmethod
    def order(xyz: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], CellGrid]:
        """The permutation that puts these unit vectors in cell order, and the grid of that order."""
        lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
        lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
        ids = _cell_ids(lat, lon)
        order = np.argsort(ids, kind="stable")
        return order, CellGrid(ids[order[BLOCK - 1 :: BLOCK]])

    def near(
        self, lat: float, lon: float, angle: float, xyz: npt.NDArray[np.float64], keys: npt.NDArray[np.int32]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]] | None:
        """The rows of ``xyz`` and ``keys`` (arrays in this grid's order) in the cells around
        (lat, lon) (degrees): every point within ``angle`` radians of it once, and some farther
        ones. None when this grid cannot answer cheaply."""
        phi = _radians(lat)
        if angle <= 0.0 or abs(phi) + angle >= _HALF_PI:
            return None
        dlat = _degrees(angle) + _MARGIN_DEG
        dlon = _degrees(_asin(min(1.0, _sin(angle) / _cos(phi)))) + _MARGIN_DEG
        if lon - dlon < -180.0 or lon + dlon >= 180.0:
            return None
        row0 = _floor((lat - dlat + 90.0) / CELL_LAT_DEG)
        row1 = _floor((lat + dlat + 90.0) / CELL_LAT_DEG)
        if row1 - row0 >= _MAX_ROWS:
            return None
        col0 = _floor((lon - dlon + 180.0) / CELL_LON_DEG)
        col1 = _floor((lon + dlon + 180.0) / CELL_LON_DEG) + 1
        first = row0 * _COLUMNS
        edges = [first + col0, first + col1]
        for _ in range(row1 - row0):
            first += _COLUMNS
            edges += (first + col0, first + col1)
        # j marks lie below an edge: the first point at or past it is in block j (index j·BLOCK
        # to j·BLOCK + BLOCK - 1), or is the end of the order when j is the number of marks.
        at: list[int] = self.marks.searchsorted(edges).tolist()
        if len(at) == 2:
            start, end = at[0] << _SHIFT, (at[1] + 1) << _SHIFT
            return xyz[start:end], keys[start:end]
        xyz_parts, key_parts = [], []
        end = 0
        for i in range(0, len(at), 2):
            start = max(at[i] << _SHIFT, end)  # rows whose blocks meet must not share points
            end = (at[i + 1] + 1) << _SHIFT
            xyz_parts.append(xyz[start:end])
            key_parts.append(keys[start:end])
        return _concatenate(xyz_parts), _concatenate(key_parts)

    @property
    def nbytes(self) -> int:
        return int(self.marks.nbytes)
