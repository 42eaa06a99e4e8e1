"""Load the bundled municipality boundaries into typed records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from reference_server.geo.codes import AdminAgencyCode, LegalDongCode, StatisticsAreaCode

DEFAULT_BOUNDARIES = Path(__file__).with_name("data") / "municipalities-2018.geojson"


@dataclass(frozen=True, slots=True)
class Municipality:
    """One 시·군·구 (general districts of large cities count separately).

    Code systems are separate attributes; the boundary dataset only carries the Statistics Korea
    code, so the others are ``None`` until a mapping table fills them in.
    """

    name: str
    name_eng: str
    statistics_code: StatisticsAreaCode
    geometry: BaseGeometry  # (Multi)Polygon in WGS84, x = longitude, y = latitude
    base_year: int | None = None
    legal_dong_code: LegalDongCode | None = None
    admin_agency_code: AdminAgencyCode | None = None

    @property
    def area_id(self) -> str:
        """Identifier used by ``ServiceAreaIndex``: the Statistics Korea code."""
        return self.statistics_code.value


def _record(feature: dict[str, Any]) -> Municipality:
    props = feature["properties"]
    # The derived file names the code system explicitly; the upstream file calls it "code".
    code = props.get("statistics_code", props.get("code"))
    if not isinstance(code, str):
        raise ValueError(f"feature without a statistics code: {props!r}")
    base_year = props.get("base_year")
    geometry = shapely.from_geojson(json.dumps(feature["geometry"]))
    return Municipality(
        name=str(props["name"]),
        name_eng=str(props.get("name_eng", "")),
        statistics_code=StatisticsAreaCode(code),
        geometry=geometry,
        base_year=int(base_year) if base_year not in (None, "") else None,
    )


def iter_municipalities(path: Path = DEFAULT_BOUNDARIES) -> Iterator[Municipality]:
    """Yield municipalities from a GeoJSON FeatureCollection (bundled 2018 data by default)."""
    with path.open(encoding="utf-8") as fh:
        collection = json.load(fh)
    if collection.get("type") != "FeatureCollection":
        raise ValueError(f"{path}: not a GeoJSON FeatureCollection")
    for feature in collection["features"]:
        yield _record(feature)


def load_municipalities(path: Path = DEFAULT_BOUNDARIES) -> list[Municipality]:
    """All municipalities, in file order (sorted by statistics code in the bundled file)."""
    return list(iter_municipalities(path))
