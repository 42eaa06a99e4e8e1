"""Does every testable MUST have a test case? (Inferno-style requirement coverage.)

Fails when a testable MUST of the catalogue — server and client profiles alike — is cited by no
registered case. SHOULDs without a case are warnings. Untestable requirements are listed with the
reason the catalogue gives (it refuses an untestable entry without one). Also reports the share of
negative cases; the target is at least 30 % (a study of OCPP implementations found negative cases
are where implementations fail).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansim_sdk.catalogue import Requirement
from conformance.registry import Case

NEGATIVE_TARGET = 0.30


@dataclass
class Coverage:
    missing_must: list[Requirement] = field(default_factory=list)
    missing_should: list[Requirement] = field(default_factory=list)
    untestable: list[Requirement] = field(default_factory=list)
    covered: dict[str, list[str]] = field(default_factory=dict)
    #: Requirement ids cases cite that the catalogue does not know (or that are withdrawn).
    unknown: list[str] = field(default_factory=list)
    cases: int = 0
    negative: int = 0
    testable_must: int = 0

    @property
    def negative_share(self) -> float:
        return self.negative / self.cases if self.cases else 0.0

    @property
    def ok(self) -> bool:
        return not self.missing_must and not self.unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cases": self.cases,
            "negative_cases": self.negative,
            "negative_share": round(self.negative_share, 4),
            "negative_target": NEGATIVE_TARGET,
            "testable_must": self.testable_must,
            "testable_must_covered": self.testable_must - len(self.missing_must),
            "missing_must": [_entry(r) for r in self.missing_must],
            "missing_should": [_entry(r) for r in self.missing_should],
            "untestable": [{**_entry(r), "reason": r.reason} for r in self.untestable],
            "unknown_requirements": self.unknown,
            "covered": self.covered,
        }


def _entry(req: Requirement) -> dict[str, Any]:
    return {"id": req.id, "level": req.level, "profiles": list(req.profiles), "text": req.text}


def compute_coverage(cases: Iterable[Case], catalogue: Mapping[str, Requirement]) -> Coverage:
    cases = list(cases)
    result = Coverage(cases=len(cases), negative=sum(c.kind == "negative" for c in cases))
    for item in cases:
        for rid in item.requirements:
            result.covered.setdefault(rid, []).append(item.id)
    result.unknown = sorted(rid for rid in result.covered if rid not in catalogue or catalogue[rid].withdrawn)
    for req in catalogue.values():
        if req.withdrawn:
            continue
        if not req.testable:
            result.untestable.append(req)
            continue
        if req.level == "MUST":
            result.testable_must += 1
        if req.id in result.covered:
            continue
        if req.level == "MUST":
            result.missing_must.append(req)
        elif req.level == "SHOULD":
            result.missing_should.append(req)
    return result


def coverage_lines(result: Coverage) -> list[str]:
    """A plain-text report, one finding a line (stable format: tests and CI grep it)."""
    lines = [
        f"cases: {result.cases}; negative: {result.negative} "
        f"({result.negative_share:.0%}, target ≥ {NEGATIVE_TARGET:.0%})",
        f"testable MUSTs covered: {result.testable_must - len(result.missing_must)}/{result.testable_must}",
    ]
    lines += [f"MISSING MUST {r.id} ({', '.join(r.profiles)}): {r.text}" for r in result.missing_must]
    lines += [f"warning: no case for SHOULD {r.id} ({', '.join(r.profiles)})" for r in result.missing_should]
    lines += [f"untestable {r.id}: {r.reason}" for r in result.untestable]
    lines += [f"UNKNOWN requirement cited by a case: {rid}" for rid in result.unknown]
    if result.cases and result.negative_share < NEGATIVE_TARGET:
        lines.append(
            f"warning: only {result.negative_share:.0%} of cases are negative "
            f"(target ≥ {NEGATIVE_TARGET:.0%})"
        )
    lines.append(
        "coverage: OK" if result.ok else f"coverage: FAILED ({len(result.missing_must)} MUSTs without a case)"
    )
    return lines
