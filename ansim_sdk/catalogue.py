"""The requirement catalogue (spec/requirements.yaml) and the requirement lines of the spec text.

The spec's Markdown defines each requirement on one line::

    - **EMG-001** (MUST; center-core; center): A center MUST ...

and the catalogue repeats it with metadata (testable, reason). Both are loaded here so that tests
and the conformance suite's coverage check read them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Level = Literal["MUST", "SHOULD", "MAY"]

PROFILES: tuple[str, ...] = (
    "center-core",
    "child-safety",
    "safe-trip",
    "directory",
    "federation",
    "statistics",
    "app",
    "reader-gateway",
    "agency",
)
ROLES: tuple[str, ...] = ("center", "directory", "app", "reader-gateway", "agency")

# The requirement areas; an ID is AREA-NNN. (Restricting to known areas keeps "SHA-256" out.)
AREAS: tuple[str, ...] = (
    "GEN", "JSON", "LOC", "ERR", "IDM", "STM", "SEC", "PRV", "AUD",
    "EMG", "TRIP", "APP", "CAM", "VID", "DSP", "AGY",
    "CHD", "TAG", "GRD", "GW", "DIR", "FED", "STA",
)  # fmt: skip
REQUIREMENT_ID = re.compile(r"\b((?:" + "|".join(AREAS) + r")-\d{3})\b")
_LINE = re.compile(
    r"^\s*- \*\*(?P<id>[A-Z]{2,4}-\d{3})\*\* \((?P<level>MUST|SHOULD|MAY); "
    r"(?P<profiles>[a-z-]+(?:, [a-z-]+)*); (?P<roles>[a-z-]+(?:, [a-z-]+)*)\): (?P<text>.+?)\s*$"
)
_DEFINITION_START = re.compile(r"^\s*- \*\*[A-Z]{2,4}-\d{3}\*\*")


class Requirement(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z]{2,4}-\d{3}$")
    level: Level
    profiles: tuple[str, ...] = Field(min_length=1)
    roles: tuple[str, ...] = Field(min_length=1)
    section: str
    text: str = Field(min_length=10)
    testable: bool
    reason: str | None = None
    withdrawn: bool = False

    @model_validator(mode="after")
    def _check(self) -> Requirement:
        unknown = [p for p in self.profiles if p not in PROFILES]
        if unknown:
            raise ValueError(f"{self.id}: unknown profiles {unknown}")
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise ValueError(f"{self.id}: unknown roles {unknown}")
        if not self.testable and not self.reason:
            raise ValueError(f"{self.id}: an untestable requirement needs a reason")
        return self


class SpecLine(BaseModel):
    """A requirement as the spec text defines it."""

    model_config = ConfigDict(frozen=True)

    id: str
    level: Level
    profiles: tuple[str, ...]
    roles: tuple[str, ...]
    text: str
    file: str
    line: int


def spec_dir() -> Path:
    """The directory holding the spec (the installed ``ansim_spec`` resource package)."""
    return Path(str(resources.files("ansim_spec")))


@cache
def load_catalogue(path: Path | None = None) -> tuple[Requirement, ...]:
    """Load and validate spec/requirements.yaml; raise ValueError on duplicates."""
    source = path or spec_dir() / "requirements.yaml"
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    entries = raw["requirements"] if isinstance(raw, dict) else raw
    reqs = tuple(Requirement.model_validate(e) for e in entries)
    seen: set[str] = set()
    for r in reqs:
        if r.id in seen:
            raise ValueError(f"duplicate requirement id {r.id}")
        seen.add(r.id)
    return reqs


def catalogue_by_id(path: Path | None = None) -> dict[str, Requirement]:
    return {r.id: r for r in load_catalogue(path)}


def spec_files(root: Path | None = None) -> list[Path]:
    base = root or spec_dir()
    return sorted(p for p in base.glob("*.md") if p.name != "README.md")


def iter_spec_lines(files: Iterable[Path]) -> Iterator[SpecLine | tuple[str, int, str]]:
    """Yield each requirement definition; malformed definition lines come as (file, line, text)."""
    for f in files:
        for n, raw in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not _DEFINITION_START.match(raw):
                continue
            m = _LINE.match(raw)
            if m is None:
                yield (f.name, n, raw)
                continue
            yield SpecLine(
                id=m["id"],
                level=m["level"],  # type: ignore[arg-type]
                profiles=tuple(m["profiles"].split(", ")),
                roles=tuple(m["roles"].split(", ")),
                text=m["text"],
                file=f.name,
                line=n,
            )


def referenced_ids(files: Iterable[Path]) -> set[str]:
    """Every requirement ID mentioned anywhere in the given files."""
    found: set[str] = set()
    for f in files:
        found.update(REQUIREMENT_ID.findall(f.read_text(encoding="utf-8")))
    return found


#: The top-level ``spec_version: X`` line of requirements.yaml.
SPEC_VERSION_LINE = re.compile(r"^spec_version:[ \t]*(\S+)[ \t]*$", re.MULTILINE)


@cache
def spec_version() -> str:
    """The specification version this build implements (``spec_version`` in requirements.yaml).

    Every center calls this at start-up: the plain top-level line is read without parsing the
    whole 140 kB catalogue (seconds in pure-Python YAML, which made a restarted center slow to
    come back); anything else is parsed as YAML."""
    text = (spec_dir() / "requirements.yaml").read_text(encoding="utf-8")
    line = SPEC_VERSION_LINE.search(text)
    if line is not None and line[1][0] not in "'\"&*!|>{[#":
        return line[1]
    raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return str(raw["spec_version"])
