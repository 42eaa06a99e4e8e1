"""Local metric scale for WGS84 coordinates, without pyproj.

Around a reference latitude, a small patch of the ellipsoid is mapped to a plane by
x = (lon - lon0) * kx, y = (lat - lat0) * ky (a local equirectangular projection) with
kx = N(φ)·cos φ·π/180 and ky = M(φ)·π/180, where M and N are the WGS84 meridional and
prime-vertical radii of curvature. At the reference point the scale is exact; the relative error
of a distance grows with the latitude span it covers, roughly |Δφ|·tan φ: below 0.2 % within
10 km and about 1 % at 50 km at Korean latitudes (33°–39°).
"""

from __future__ import annotations

import math

WGS84_A = 6_378_137.0
WGS84_E2 = 6.69437999014e-3


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    """(metres per degree of longitude, metres per degree of latitude) at ``lat_deg``."""
    phi = math.radians(lat_deg)
    w = 1.0 - WGS84_E2 * math.sin(phi) ** 2
    meridional = WGS84_A * (1.0 - WGS84_E2) / w**1.5
    prime_vertical = WGS84_A / math.sqrt(w)
    k = math.pi / 180.0
    return prime_vertical * math.cos(phi) * k, meridional * k
