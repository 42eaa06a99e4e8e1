"""The requirement catalogue as the suite sees it.

Reads ``spec/requirements.yaml`` when it exists; until the fragments are merged into it, reads and
merges ``spec/_fragments/*.yaml`` (a development fallback). Either way every entry is validated by
:class:`ansim_sdk.catalogue.Requirement`, so the rules (an untestable requirement has a reason, known
profiles and roles) are the catalogue's, not the suite's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

import yaml

from ansim_sdk.catalogue import Level, Requirement, load_catalogue, spec_dir

_RANK: dict[Level, int] = {"MUST": 0, "SHOULD": 1, "MAY": 2}


def _load_fragments(directory: Path) -> tuple[Requirement, ...]:
    entries: list[Requirement] = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        items = raw["requirements"] if isinstance(raw, dict) else raw
        entries.extend(Requirement.model_validate(item) for item in items)
    seen: set[str] = set()
    for req in entries:
        if req.id in seen:
            raise ValueError(f"duplicate requirement id {req.id} in {directory}")
        seen.add(req.id)
    return tuple(entries)


@cache
def load_requirements(path: Path | None = None) -> Mapping[str, Requirement]:
    """Requirement id → entry, from ``path``, spec/requirements.yaml, or the fragments."""
    if path is not None and path.is_dir():
        reqs = _load_fragments(path)
    elif path is not None:
        reqs = load_catalogue(path)
    elif (spec_dir() / "requirements.yaml").is_file():
        reqs = load_catalogue()
    else:
        reqs = _load_fragments(spec_dir() / "_fragments")
    return {r.id: r for r in reqs}


def derived_level(requirement_ids: Iterable[str], catalogue: Mapping[str, Requirement]) -> Level:
    """The strictest level among the requirements: MUST if any is MUST, else SHOULD, else MAY.

    Raises KeyError naming the first id the catalogue does not know.
    """
    levels = [catalogue[rid].level for rid in requirement_ids]
    if not levels:
        raise ValueError("a case must name at least one requirement")
    return min(levels, key=_RANK.__getitem__)
