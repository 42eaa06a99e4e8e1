"""Select cases for a declaration, run them concurrently, and add up the verdicts.

Per case: a fresh log bound to its task (every call recorded), the case's timeout (a hang is a
defect: FAIL), then its cleanups. ConformanceFailure → FAIL, CaseSkipped → SKIP, anything else
→ ERROR. See conformance.results for how verdicts make a profile's verdict.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ansim_sdk.catalogue import Requirement
from conformance.context import CaseContext, RunContext
from conformance.declaration import Declaration
from conformance.known_failures import apply_known_failures, load_known_failures
from conformance.outcomes import CaseNotApplicable, CaseSkipped, ConformanceFailure
from conformance.preflight import Preflight, run_preflight
from conformance.recorder import bind_log, drain_pending
from conformance.registry import Case, Registry
from conformance.results import CaseResult, RunResult, Verdict, evaluate_profile
from conformance.versions import schema_version, spec_version, suite_version

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 15.0


@dataclass
class RunOptions:
    #: Profiles to test; empty = every declared profile. Each must be declared.
    profiles: Sequence[str] = ()
    only: Sequence[str] = ()
    exclude: Sequence[str] = ()
    strict: bool = False
    known_failures: Path | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    case_timeout_s: float = DEFAULT_TIMEOUT_S
    #: Called after each case (progress display).
    on_result: Callable[[CaseResult], None] | None = field(default=None, repr=False)


class RunError(ValueError):
    """The run cannot start (bad selection, unknown ids, undeclared profile)."""


def _base_result(
    item: Case, catalogue: Mapping[str, Requirement], verdict: Verdict, message: str = ""
) -> CaseResult:
    return CaseResult(
        id=item.id,
        title=item.title,
        profiles=item.profiles,
        requirements=item.requirements,
        level=item.level(catalogue),
        kind=item.kind,
        verdict=verdict,
        message=message,
    )


def plan(
    cases: Sequence[Case], declaration: Declaration, options: RunOptions, catalogue: Mapping[str, Requirement]
) -> tuple[list[Case], list[CaseResult]]:
    """The cases to run, and the results of those that will not run (not applicable, skipped for an
    undeclared feature, not selected)."""
    profiles = list(options.profiles) or list(declaration.profiles)
    undeclared = [p for p in profiles if p not in declaration.profiles]
    if undeclared:
        raise RunError(
            f"profile(s) {undeclared} are not in the declaration (declared: {declaration.profiles})"
        )
    known = {c.id for c in cases}
    unknown = [i for i in (*options.only, *options.exclude) if i not in known]
    if unknown:
        raise RunError(f"unknown case id(s): {', '.join(unknown)} (see `ansim conformance list`)")
    to_run: list[Case] = []
    decided: list[CaseResult] = []
    for item in cases:
        if not set(item.profiles) & set(profiles):
            decided.append(_base_result(item, catalogue, Verdict.NOT_APPLICABLE, "profile not declared"))
        elif (options.only and item.id not in options.only) or item.id in options.exclude:
            decided.append(
                _base_result(item, catalogue, Verdict.NOT_RUN, "not selected (--only / --exclude)")
            )
        elif missing := [f for f in item.features if f not in declaration.features]:
            result = _base_result(
                item, catalogue, Verdict.SKIP, f"needs undeclared optional feature(s) {missing}"
            )
            result.feature_skip = True
            decided.append(result)
        else:
            to_run.append(item)
    return to_run, decided


async def run_case(
    item: Case,
    run: RunContext,
    catalogue: Mapping[str, Requirement],
    timeout_s: float,
    blocked: str = "",
) -> CaseResult:
    """Run one case to a verdict (never raises)."""
    result = _base_result(item, catalogue, Verdict.PASS)
    if blocked:
        result.verdict, result.message = Verdict.ERROR, f"pre-flight: {blocked}"
        return result
    ctx = CaseContext(run, item.id)
    timeout = item.timeout or timeout_s
    started = time.perf_counter()
    failing = None
    with bind_log(ctx.log):
        try:
            await asyncio.wait_for(item.func(ctx), timeout)
        except ConformanceFailure as failure:
            result.verdict, result.message = Verdict.FAIL, failure.message
            failing = failure.exchange or (ctx.log[-1] if ctx.log else None)
        except CaseSkipped as skipped:
            result.verdict, result.message = Verdict.SKIP, skipped.reason
        except CaseNotApplicable as inapplicable:
            result.verdict, result.message = Verdict.NOT_APPLICABLE, inapplicable.reason
        except TimeoutError:
            result.verdict = Verdict.FAIL
            result.message = f"no verdict within {timeout:g} s: the target hung (a hang is a defect)"
            failing = ctx.log[-1] if ctx.log else None
        except Exception as error:
            result.verdict = Verdict.ERROR
            result.message = f"{type(error).__name__}: {error}"
            result.notes.append("".join(traceback.format_exception(error)[-3:]).strip())
        problems = await ctx.cleanup()
    result.duration_s = time.perf_counter() - started
    await drain_pending(0.2)
    result.exchanges = [e.to_dict() for e in ctx.log]
    if failing is not None and failing in ctx.log:
        result.failing_exchange = ctx.log.index(failing)
    elif failing is not None:
        result.exchanges.append(failing.to_dict())
        result.failing_exchange = len(result.exchanges) - 1
    result.notes += ctx.notes + problems
    return result


def _blocker(item: Case, preflight: Preflight, profiles: Sequence[str]) -> str:
    if not item.needs_preflight:
        return ""
    mine = [p for p in item.profiles if p in profiles]
    problems = [m for p in mine for m in preflight.problems.get(p, [])]
    # Block only when every profile the case runs for has a problem.
    return "; ".join(problems) if mine and all(p in preflight.problems for p in mine) else ""


async def run_suite(
    registry: Registry,
    declaration: Declaration,
    catalogue: Mapping[str, Requirement],
    options: RunOptions,
    run_id: str | None = None,
) -> RunResult:
    """Run the selected cases against the declared target and return the whole result."""
    registry_problems = registry.problems(catalogue)
    if registry_problems:
        raise RunError("the registered cases do not match the catalogue:\n" + "\n".join(registry_problems))
    known = load_known_failures(options.known_failures) if options.known_failures else {}
    profiles = list(options.profiles) or list(declaration.profiles)
    to_run, decided = plan(registry.cases, declaration, options, catalogue)
    # Cases that wait for timers (a declared timeout) start first, so that they overlap the many
    # quick ones instead of lengthening the run.
    to_run = sorted(to_run, key=lambda item: -(item.timeout or 0.0))
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    run = RunContext(declaration, run_id)
    notes: list[str] = []
    try:
        preflight = await run_preflight(run, profiles)
        semaphore = asyncio.Semaphore(max(1, options.concurrency))

        async def one(item: Case) -> CaseResult:
            async with semaphore:
                result = await run_case(
                    item, run, catalogue, options.case_timeout_s, _blocker(item, preflight, profiles)
                )
            if options.on_result is not None:
                options.on_result(result)
            return result

        ran = await asyncio.gather(*(one(item) for item in to_run))
    finally:
        notes += await run.close()
    results = sorted([*ran, *decided], key=lambda r: r.id)
    stale = apply_known_failures(results, known, (c.id for c in registry.cases))
    cited = {rid for r in results for rid in r.requirements}
    return RunResult(
        run_id=run.run_id,
        suite_version=suite_version(),
        spec_version=spec_version(),
        schema_version=schema_version(),
        target=declaration.target,
        declaration=declaration.redacted(),
        profiles_declared=profiles,
        started=started_at.isoformat().replace("+00:00", "Z"),
        finished=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        duration_s=time.perf_counter() - started,
        cases=results,
        profiles={p: evaluate_profile(p, results, strict=options.strict) for p in profiles},
        requirement_texts={rid: catalogue[rid].text for rid in sorted(cited) if rid in catalogue},
        preflight=preflight.lines(),
        notes=notes,
        stale_known_failures=stale,
        options={
            "strict": options.strict,
            "only": list(options.only),
            "exclude": list(options.exclude),
            "known_failures": str(options.known_failures) if options.known_failures else None,
            "concurrency": options.concurrency,
            "case_timeout_s": options.case_timeout_s,
        },
    )
