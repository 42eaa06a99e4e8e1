"""Derive the bundled boundary file from the shared SGIS 2018 dataset, deterministically.

Usage: ``python -m reference_server.geo.derive SRC DST``

What it does (and NOTICE.md repeats): keeps the 250 features and their geometry, rounds
coordinates to 5 decimal places (about 1 m; the source is already at that precision, so this is
a no-op on the current input), repairs any invalid polygon with ``make_valid`` (keeping only
polygonal parts), renames the property ``code`` to ``statistics_code`` so the code system is
explicit, sorts features by that code and writes one feature per line so that diffs stay
reviewable. The same input always produces byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

PRECISION = 5  # decimal places of degrees, about 1.1 m in latitude
ATTRIBUTION = "출처: 통계청 통계지리정보서비스 (Statistics Korea SGIS), 공공누리 제1유형 (KOGL Type 1)"


def _round_coords(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (int, float)):
            return [round(float(c), PRECISION) for c in value]
        return [_round_coords(v) for v in value]
    raise TypeError(f"unexpected coordinate value {value!r}")


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        raise ValueError("feature has no polygonal part")
    return shapely.MultiPolygon(parts)


def derive_feature(feature: dict[str, Any]) -> dict[str, Any]:
    props = feature["properties"]
    code = str(props["code"])
    geometry = mapping(_polygonal(shape(feature["geometry"])))
    rounded = {"type": geometry["type"], "coordinates": _round_coords(geometry["coordinates"])}
    if not shape(rounded).is_valid:  # rounding can in principle collapse a sliver; repair again
        repaired = mapping(_polygonal(shape(rounded)))
        rounded = {"type": repaired["type"], "coordinates": _round_coords(repaired["coordinates"])}
    return {
        "type": "Feature",
        "properties": {
            "statistics_code": code,
            "name": str(props["name"]),
            "name_eng": str(props.get("name_eng", "")),
            "base_year": str(props.get("base_year", "")),
        },
        "geometry": rounded,
    }


def derive(src: Path, dst: Path) -> int:
    """Write the derived FeatureCollection to ``dst``; return the number of features."""
    with src.open(encoding="utf-8") as fh:
        collection = json.load(fh)
    features = sorted(
        (derive_feature(f) for f in collection["features"]),
        key=lambda f: f["properties"]["statistics_code"],
    )
    codes = [f["properties"]["statistics_code"] for f in features]
    if len(set(codes)) != len(codes):
        raise ValueError("duplicate statistics codes in source")
    dumps = {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": False}
    lines = [
        '{"type":"FeatureCollection",',
        f'"attribution":{json.dumps(ATTRIBUTION, **dumps)},',  # type: ignore[arg-type]
        '"features":[',
    ]
    lines += [
        json.dumps(f, **dumps) + ("," if i < len(features) - 1 else "")  # type: ignore[arg-type]
        for i, f in enumerate(features)
    ]
    lines.append("]}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return len(features)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_server.geo.derive", description=__doc__)
    parser.add_argument("src", type=Path, help="shared municipalities-2018.geojson")
    parser.add_argument("dst", type=Path, help="output GeoJSON (the bundled data file)")
    args = parser.parse_args(argv)
    count = derive(args.src, args.dst)
    print(f"wrote {count} features to {args.dst} ({args.dst.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
