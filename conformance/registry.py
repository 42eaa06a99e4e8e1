"""Test cases and the registry they are declared in.

A case is an ``async def`` taking a :class:`~conformance.context.CaseContext`, declared with
:func:`case`::

    @case("TC_EMG_003_SRV", title="A retried RaiseEmergency with the same request_id returns the "
          "same emergency", requirements=["IDM-002", "EMG-004"], profile="center-core", kind="positive")
    async def retried_raise_returns_same(ctx: CaseContext) -> None: ...

It passes by returning, fails by raising :class:`ConformanceFailure` (the helpers in
conformance.expect do), and any other exception is verdict ERROR (a suite or declaration problem,
not a finding about the target).

Ids follow OCTT's ``TC_<block>_<nn>_<role>``: block = the requirement area (EMG, CAM, GEN …), a
three-digit number unique in the block, and SRV (the target is a server) or CLT (the target is a
client). Ids are locked in conformance/test_ids.lock and never reused.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ansim_sdk.catalogue import PROFILES, REQUIREMENT_ID, Level, Requirement
from conformance.outcomes import CaseSkipped, ConformanceFailure
from conformance.profiles import FEATURES
from conformance.requirements import derived_level

if TYPE_CHECKING:
    from conformance.context import CaseContext

Kind = Literal["positive", "negative"]
CaseFunc = Callable[["CaseContext"], Awaitable[None]]
CASE_ID = re.compile(r"^TC_(?P<block>[A-Z]{2,4})_(?P<nn>\d{3})_(?P<role>SRV|CLT)$")

__all__ = ["CASE_ID", "Case", "CaseSkipped", "ConformanceFailure", "Registry", "case", "registry"]


@dataclass(frozen=True)
class Case:
    """One registered test case."""

    id: str
    title: str
    requirements: tuple[str, ...]
    profiles: tuple[str, ...]
    kind: Kind
    features: tuple[str, ...]
    func: CaseFunc
    #: Seconds before the case counts as hung (FAIL); None = the run's default.
    timeout: float | None
    #: False for cases that test what the pre-flight checks (health, reflection): they still run
    #: when the pre-flight finds a problem with their profile.
    needs_preflight: bool
    module: str
    doc: str

    def level(self, catalogue: Mapping[str, Requirement]) -> Level:
        return derived_level(self.requirements, catalogue)

    @property
    def role(self) -> str:
        return self.id.rsplit("_", 1)[1]


class Registry:
    """Every case, by id. The suite has one (:data:`registry`); tests may build their own."""

    def __init__(self) -> None:
        self._cases: dict[str, Case] = {}

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(sorted(self._cases.values(), key=lambda c: c.id))

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._cases

    def get(self, case_id: str) -> Case:
        return self._cases[case_id]

    @property
    def cases(self) -> tuple[Case, ...]:
        return tuple(sorted(self._cases.values(), key=lambda c: c.id))

    def add(self, item: Case) -> None:
        if item.id in self._cases:
            other = self._cases[item.id]
            raise ValueError(f"case id {item.id} is declared twice ({other.module} and {item.module})")
        self._cases[item.id] = item

    def case(
        self,
        case_id: str,
        *,
        title: str,
        requirements: Sequence[str],
        profile: str | Sequence[str],
        kind: Kind,
        features: Sequence[str] = (),
        timeout: float | None = None,
        needs_preflight: bool = True,
    ) -> Callable[[CaseFunc], CaseFunc]:
        """Declare a test case; see the module docstring. Checks everything that can be checked
        without the catalogue at import time, so a typo fails the import, not the run."""
        profiles = (profile,) if isinstance(profile, str) else tuple(profile)
        problems: list[str] = []
        if not CASE_ID.match(case_id):
            problems.append("id must be TC_<AREA>_<nnn>_<SRV|CLT>, e.g. TC_EMG_003_SRV")
        if not title.strip():
            problems.append("title must not be empty")
        if not requirements:
            problems.append("name at least one requirement")
        problems += [
            f"{r!r} is not a requirement id" for r in requirements if not REQUIREMENT_ID.fullmatch(r)
        ]
        if not profiles:
            problems.append("name at least one profile")
        problems += [
            f"unknown profile {p!r}; known: {', '.join(PROFILES)}" for p in profiles if p not in PROFILES
        ]
        if kind not in ("positive", "negative"):
            problems.append(f"kind must be 'positive' or 'negative', not {kind!r}")
        problems += [
            f"unknown feature {f!r}; add it to conformance.profiles.FEATURES first"
            for f in features
            if f not in FEATURES
        ]
        if timeout is not None and timeout <= 0:
            problems.append("timeout must be positive")

        def register(func: CaseFunc) -> CaseFunc:
            if not inspect.iscoroutinefunction(func):
                problems.append("the test must be an 'async def'")
            if problems:
                raise ValueError(f"{case_id} ({func.__module__}.{func.__qualname__}): " + "; ".join(problems))
            self.add(
                Case(
                    id=case_id,
                    title=title.strip(),
                    requirements=tuple(requirements),
                    profiles=profiles,
                    kind=kind,
                    features=tuple(features),
                    func=func,
                    timeout=timeout,
                    needs_preflight=needs_preflight,
                    module=func.__module__,
                    doc=inspect.getdoc(func) or "",
                )
            )
            return func

        return register

    def problems(self, catalogue: Mapping[str, Requirement]) -> list[str]:
        """Cases that name unknown or withdrawn requirements, or a profile none of them belongs to."""
        found: list[str] = []
        for item in self.cases:
            known = [catalogue[r] for r in item.requirements if r in catalogue]
            found += [f"{item.id}: unknown requirement {r}" for r in item.requirements if r not in catalogue]
            found += [f"{item.id}: requirement {r.id} is withdrawn" for r in known if r.withdrawn]
            covered = {p for r in known for p in r.profiles}
            found += [
                f"{item.id}: profile {p} is not a profile of any of its requirements"
                for p in item.profiles
                if known and p not in covered
            ]
        return found


#: The suite's registry; ``conformance.cases`` fills it.
registry = Registry()
#: ``@case(...)``: declare a case in the suite's registry.
case = registry.case
