"""The spec text and the machine-readable catalogue agree, in both directions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ansim_sdk.catalogue import (
    SpecLine,
    iter_spec_lines,
    load_catalogue,
    referenced_ids,
    spec_dir,
    spec_files,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def definitions() -> list[SpecLine]:
    lines = list(iter_spec_lines(spec_files()))
    malformed = [x for x in lines if not isinstance(x, SpecLine)]
    assert not malformed, f"malformed requirement lines: {malformed}"
    return [x for x in lines if isinstance(x, SpecLine)]


def test_catalogue_is_large_and_unique() -> None:
    reqs = load_catalogue()
    assert len(reqs) >= 80
    assert len({r.id for r in reqs}) == len(reqs)


def test_every_requirement_defined_once_in_text(definitions: list[SpecLine]) -> None:
    counts = Counter(d.id for d in definitions)
    assert [i for i, n in counts.items() if n > 1] == []


def test_text_and_catalogue_have_the_same_ids(definitions: list[SpecLine]) -> None:
    in_text = {d.id for d in definitions}
    in_catalogue = {r.id for r in load_catalogue() if not r.withdrawn}
    assert sorted(in_text - in_catalogue) == [], "defined in the text but missing in requirements.yaml"
    assert sorted(in_catalogue - in_text) == [], "in requirements.yaml but not defined in the text"


def test_text_and_catalogue_agree_on_each_entry(definitions: list[SpecLine]) -> None:
    catalogue = {r.id: r for r in load_catalogue()}
    mismatches = []
    for d in definitions:
        r = catalogue[d.id]
        if (r.level, r.profiles, r.roles, " ".join(r.text.split())) != (
            d.level,
            d.profiles,
            d.roles,
            " ".join(d.text.split()),
        ):
            mismatches.append(f"{d.file}:{d.line} {d.id}")
    assert mismatches == []


def test_every_referenced_id_exists() -> None:
    sources = [*spec_files(), *sorted((REPO / "proto" / "ansim" / "v1").glob("*.proto"))]
    known = {r.id for r in load_catalogue()}
    assert sorted(referenced_ids(sources) - known) == []


def test_spec_dir_is_the_repository_spec() -> None:
    assert (spec_dir() / "requirements.yaml").is_file()


def test_spec_version_is_stated_once_consistently() -> None:
    from ansim_sdk.catalogue import spec_version
    from conformance.versions import spec_version as version_in_readme

    assert spec_version() == version_in_readme() != "unknown"
