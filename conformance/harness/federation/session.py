"""The federation harness of a run, started by the first case that needs it and stopped when the
run ends (a run clean-up). Cases call :func:`harness_for`."""

from __future__ import annotations

import asyncio
import time

from conformance.context import CaseContext, RunContext
from conformance.harness.federation.harness import FederationHarness
from conformance.outcomes import ConformanceFailure

_HARNESSES: dict[int, asyncio.Future[FederationHarness]] = {}
#: Extra time over the declared registry reload for the center's first ListCenters.
READY_SLACK_S = 4.0


async def _start(run: RunContext) -> FederationHarness:
    harness = FederationHarness(run.declaration, run.run_id)
    await harness.start()
    run.on_cleanup(harness.stop)
    assert run.declaration.federation_harness is not None
    wait = min(run.declaration.federation_harness.registry_reload_seconds + READY_SLACK_S, 30.0)
    began = time.monotonic()
    listed = await harness.wait_for(lambda c: c.method == "ListCenters" and c.answer == "ok", wait)
    harness.ready_after_s = time.monotonic() - began
    harness.ready = bool(listed)
    return harness


async def harness_for(ctx: CaseContext) -> FederationHarness:
    """The run's federation harness, once the center under test has loaded its registry from it;
    skips the case without a ``federation_harness`` declaration."""
    if ctx.run.declaration.federation_harness is None:
        ctx.skip(
            "a home-side federation case: declare federation_harness and point the TEST deployment's"
            " directory at it (conformance/harness/federation/README.md)"
        )
    if ctx.run.declaration.fixtures.center is None:
        ctx.skip("the declaration has no fixtures.center")
    key = id(ctx.run)
    if key not in _HARNESSES:
        _HARNESSES[key] = asyncio.ensure_future(_start(ctx.run))

        async def forget() -> None:
            _HARNESSES.pop(key, None)

        ctx.run.on_cleanup(forget)
    harness = await asyncio.shield(_HARNESSES[key])
    if not harness.ready:
        assert ctx.run.declaration.federation_harness is not None
        raise ConformanceFailure(
            f"the center under test never called ListCenters at the harness directory"
            f" ({ctx.run.declaration.federation_harness.listen}) within its declared registry reload"
            " interval: is its TEST deployment pointed at the harness? [DIR-021]"
        )
    return harness
