"""Verdicts and how they add up: per case, per requirement, per profile, per run.

Profile rule (after the OGC test suites: a class passes only if its tests ran): a declared profile
PASSES only when every MUST case of it that applies ran and passed. A MUST case that failed makes it
FAIL; one that did not run to a verdict (error, skip, excluded by --only/--exclude, timed-out
pre-flight) makes it INCOMPLETE. A case skipped because it needs an optional feature the vendor did
not declare does not apply. SHOULD failures are warnings, or failures with ``strict``. A profile
without a single applicable MUST case that ran is INCOMPLETE, never PASS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ansim_sdk.catalogue import Level


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    NOT_APPLICABLE = "not-applicable"
    #: Selected profile, but left out by --only / --exclude.
    NOT_RUN = "not-run"


class ProfileVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCOMPLETE = "incomplete"


@dataclass
class CaseResult:
    id: str
    title: str
    profiles: tuple[str, ...]
    requirements: tuple[str, ...]
    level: Level
    kind: str
    verdict: Verdict
    message: str = ""
    #: True when SKIP is because of an undeclared optional feature (the case does not apply).
    feature_skip: bool = False
    duration_s: float = 0.0
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    #: Index in ``exchanges`` of the exchange that shows the failure, if any.
    failing_exchange: int | None = None
    notes: list[str] = field(default_factory=list)
    #: Set when a known-failures list names this case: "matched" or why it is stale.
    known_failure: str = ""

    @property
    def applies(self) -> bool:
        return self.verdict not in (Verdict.NOT_APPLICABLE,) and not self.feature_skip


@dataclass
class ProfileResult:
    profile: str
    verdict: ProfileVerdict
    must_total: int
    must_passed: int
    failures: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Failing MUST cases that a known-failures list expects (the verdict still says FAIL).
    known: list[str] = field(default_factory=list)

    @property
    def passes_with_known_failures(self) -> bool:
        """PASS once the expected (listed, matched) failures are discounted."""
        return self.verdict == ProfileVerdict.PASS or (
            self.verdict == ProfileVerdict.FAIL
            and not self.incomplete
            and set(self.failures) <= set(self.known)
        )


def _line(result: CaseResult) -> str:
    return f"{result.id} ({result.verdict.value}): {result.message}".rstrip(": ")


def evaluate_profile(profile: str, cases: Iterable[CaseResult], *, strict: bool = False) -> ProfileResult:
    """The verdict of one declared profile from the results of its cases."""
    mine = [c for c in cases if profile in c.profiles and c.applies]
    must = [c for c in mine if c.level == "MUST"]
    result = ProfileResult(
        profile, ProfileVerdict.PASS, len(must), sum(c.verdict == Verdict.PASS for c in must)
    )
    for item in mine:
        blocking = item.level == "MUST" or strict
        if item.verdict == Verdict.FAIL:
            (result.failures if blocking else result.warnings).append(_line(item))
            if blocking and item.known_failure == "matched":
                result.known.append(_line(item))
        elif item.verdict in (Verdict.ERROR, Verdict.SKIP, Verdict.NOT_RUN):
            (result.incomplete if blocking else result.warnings).append(_line(item))
    if result.failures:
        result.verdict = ProfileVerdict.FAIL
    elif result.incomplete or result.must_passed == 0:
        result.verdict = ProfileVerdict.INCOMPLETE
        if result.must_passed == 0 and not result.incomplete:
            result.incomplete.append("no MUST case of this profile ran")
    return result


def requirement_verdicts(cases: Iterable[CaseResult]) -> dict[str, dict[str, Any]]:
    """Requirement id → its cases and a verdict: fail if any case failed, pass if every applicable
    case passed, else the first other verdict."""
    table: dict[str, list[CaseResult]] = {}
    for item in cases:
        for rid in item.requirements:
            table.setdefault(rid, []).append(item)
    out: dict[str, dict[str, Any]] = {}
    for rid, items in sorted(table.items()):
        applicable = [c for c in items if c.applies]
        verdicts = [c.verdict for c in applicable]
        if Verdict.FAIL in verdicts:
            verdict = Verdict.FAIL
        elif applicable and all(v == Verdict.PASS for v in verdicts):
            verdict = Verdict.PASS
        elif applicable:
            verdict = next(v for v in verdicts if v != Verdict.PASS)
        else:
            verdict = Verdict.NOT_APPLICABLE
        out[rid] = {"verdict": verdict.value, "cases": [c.id for c in items]}
    return out


@dataclass
class RunResult:
    """Everything a report needs."""

    run_id: str
    suite_version: str
    spec_version: str
    schema_version: str
    target: str
    declaration: Mapping[str, Any]
    profiles_declared: Sequence[str]
    started: str
    finished: str
    duration_s: float
    cases: list[CaseResult]
    profiles: dict[str, ProfileResult]
    requirement_texts: Mapping[str, str] = field(default_factory=dict)
    preflight: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Known-failure entries that no longer hold (each fails the run).
    stale_known_failures: list[str] = field(default_factory=list)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every declared profile passes (expected known failures discounted) and no known-failure
        entry is stale."""
        return not self.stale_known_failures and all(
            p.passes_with_known_failures for p in self.profiles.values()
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for item in self.cases:
            out[item.verdict.value] += 1
        return out
