"""A latitude/longitude cell grid that narrows a small-radius camera query to a few array slices.

Points are ordered by cell, cells row-major (latitude rows, longitude columns), so the cells of
one row that a ball overlaps are one contiguous slice of the ordered arrays. ``spans`` gives, for
a query point and radius, slices that together hold every point within that great-circle
distance (a conservative superset: the caller measures the exact distances). It declines (returns
``None``) where a few slices cannot cover the ball — large radii, a ball containing a pole or
crossing the antimeridian — and the caller then asks its tree.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

CELL_LAT_DEG = 0.003  # ≈ 330 m
CELL_LON_DEG = 0.004  # ≈ 355 m at 37° N
_COLUMNS = math.ceil(360.0 / CELL_LON_DEG) + 1
_MAX_ROWS = 4  # more rows than this and the tree is the better tool
_MARGIN_DEG = 1e-9  # covers rounding in the degrees recovered from unit vectors


def _cell_ids(lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    rows = np.floor((lat_deg + 90.0) / CELL_LAT_DEG).astype(np.int64)
    cols = np.floor((lon_deg + 180.0) / CELL_LON_DEG).astype(np.int64)
    return rows * _COLUMNS + cols


class CellGrid:
    """Cell order of a set of unit vectors, and the slices of that order a ball can touch."""

    __slots__ = ("cells",)

    def __init__(self, cells: npt.NDArray[np.int64]) -> None:
        self.cells = cells  # cell id of each point, ascending

    @staticmethod
    def order(xyz: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], CellGrid]:
        """The permutation that puts these unit vectors in cell order, and the grid of that order."""
        lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
        lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
        ids = _cell_ids(lat, lon)
        order = np.argsort(ids, kind="stable")
        return order, CellGrid(ids[order])

    def spans(self, lat: float, lon: float, angle: float) -> list[tuple[int, int]] | None:
        """Slices of the cell order holding every point within ``angle`` radians of (lat, lon)
        (degrees), or None when this grid cannot answer cheaply."""
        phi = math.radians(lat)
        if angle <= 0.0 or abs(phi) + angle >= math.pi / 2:
            return None
        dlat = math.degrees(angle) + _MARGIN_DEG
        dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(phi)))) + _MARGIN_DEG
        if lon - dlon < -180.0 or lon + dlon >= 180.0:
            return None
        row0 = math.floor((lat - dlat + 90.0) / CELL_LAT_DEG)
        row1 = math.floor((lat + dlat + 90.0) / CELL_LAT_DEG)
        if row1 - row0 >= _MAX_ROWS:
            return None
        col0 = math.floor((lon - dlon + 180.0) / CELL_LON_DEG)
        col1 = math.floor((lon + dlon + 180.0) / CELL_LON_DEG)
        edges: list[int] = []
        for row in range(row0, row1 + 1):
            edges += (row * _COLUMNS + col0, row * _COLUMNS + col1 + 1)
        at = self.cells.searchsorted(edges).tolist()
        return [(at[i], at[i + 1]) for i in range(0, len(at), 2) if at[i] < at[i + 1]]

    @property
    def nbytes(self) -> int:
        return int(self.cells.nbytes)
