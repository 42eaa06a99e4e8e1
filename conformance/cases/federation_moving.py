"""Home-side federation cases about an SOS that moves or changes after it was first routed (spec
§17.4, §17.6): a recovery forward after a fallback and a handoff by the home center carry her
latest fix, go to the center responsible for it, and carry the emergency's current state (her
duress cancel, §10).

Same harness and slots as :mod:`conformance.cases.federation_home`; a slot's peer that is scripted
``unavailable`` stays down for the whole case.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from ansim.v1 import federation_pb2

from conformance import CaseContext, case, check
from conformance.cases.emergency import DURESS_CODE, Reporter, verifier
from conformance.cases.federation_home import (
    FALLBACK_WITHIN_S,
    PROFILE,
    Raised,
    _fix,
    _handled_itself,
    _home_handoff,
    _leave_home_area,
    _local_sos,
    _observable_first_retry,
    _stream,
)
from conformance.harness.federation.harness import Call, FederationHarness, Slot
from conformance.harness.federation.session import harness_for

#: How long after her second outside fix the home center must have tried the new area's center.
PROMPT_S = 3.5


async def _raise_with_duress_code(ctx: CaseContext, slot: Slot) -> Raised:
    reporter = Reporter.new(ctx)
    began = time.monotonic()
    emergency = await reporter.raise_(location=_fix(*slot.point()), duress_verifier=verifier())
    return Raised(reporter, emergency, began)


async def _in_fallback(
    ctx: CaseContext, h: FederationHarness, down: str, up: str
) -> tuple[Slot, Slot, Raised]:
    """A slot whose only center ``down`` is unavailable, a slot whose center ``up`` answers, and an
    SOS (with a duress verifier) raised in the first that the home center handles itself."""
    there = h.slot(candidates=[down], actions={down: ["unavailable"]})
    elsewhere = h.slot(candidates=[up])
    sos = await _raise_with_duress_code(ctx, there)
    await _handled_itself(ctx, sos, "the responsible center down")
    return there, elsewhere, sos


def _same_place(call: Call, lat: float, lon: float) -> bool:
    loc = call.request.emergency.location
    return bool(abs(loc.latitude - lat) < 1e-6 and abs(loc.longitude - lon) < 1e-6)


def _recovery_rounds(h: FederationHarness, slot: Slot, peer: str) -> int:
    """Forwards to ``peer`` for ``slot`` by distinct request_id: the routing, then each recovery."""
    return len({c.request.request_id for c in h.forwards(slot, peer)})


@case(
    "TC_FED_027_SRV",
    title="After a fallback the recovery forward goes to the center responsible for her latest fix,"
    " with that fix and her duress cancel",
    requirements=["FED-015", "FED-014", "EMG-013"],
    profile=PROFILE,
    kind="positive",
    timeout=40,
)
async def recovery_follows_her(ctx: CaseContext) -> None:
    h = await harness_for(ctx)
    first_retry = _observable_first_retry(ctx, h)
    main, second = h.peer("main"), h.peer("second")
    there, moved, sos = await _in_fallback(ctx, h, main, second)
    latest = moved.point(0.0002)
    await _stream(sos, (1, _fix(*latest, at=datetime.now(UTC) + timedelta(seconds=1))))
    await sos.reporter.cancel(sos.name, code=DURESS_CODE)
    found = await h.wait_for(lambda c: c in h.forwards(moved, second), first_retry + 2 * FALLBACK_WITHIN_S)
    check(
        bool(found),
        "after the fallback she moved into another center's area, but no recovery forward reached the"
        f" center responsible for her latest fix within {first_retry + 10:.0f} s (forwards for the first"
        f" area: {len(h.forwards(there, main))}) [FED-015]",
    )
    recovery = found[0].request
    check(
        recovery.reason == federation_pb2.FORWARD_REASON_FALLBACK,
        f"the recovery forward's reason must be FALLBACK, got {recovery.reason} [FED-015]",
    )
    check(recovery.emergency.incident_id == sos.emergency.incident_id, "another incident id")
    check(_same_place(found[0], *latest), "the recovery forward does not carry her latest fix [FED-015]")
    check(
        recovery.emergency.duress,
        "she cancelled with her duress code after the fallback, but the recovery forward says duress"
        " false: the handling center would call her phone [EMG-013]",
    )
    check(bool(recovery.prior_dispatches), "the recovery forward lists no prior_dispatches [FED-015]")


@case(
    "TC_FED_028_SRV",
    title="A home center handling an SOS in fallback tries the center for her new location as soon as"
    " two fixes 10 s apart show she left its area",
    requirements=["FED-019", "FED-015"],
    profile=PROFILE,
    kind="positive",
    timeout=45,
)
async def fallback_follows_her(ctx: CaseContext) -> None:
    h = await harness_for(ctx)
    first_retry = h.config.recovery_first_seconds
    if not 1.5 <= first_retry <= 8:
        ctx.skip(
            f"needs a declared first recovery retry of 1.5 to 8 s (declared {first_retry} s), so that"
            " the next regular recovery is clearly later than a prompt one"
        )
    main, second = h.peer("main"), h.peer("second")
    there, away, sos = await _in_fallback(ctx, h, main, second)
    # the routing and two failed recoveries: the next regular one is 4 × the first retry away
    await h.wait_for(lambda _: _recovery_rounds(h, there, main) >= 3, 3 * first_retry + 2 * FALLBACK_WITHIN_S)
    check(
        _recovery_rounds(h, there, main) >= 3,
        f"expected two recovery forwards to the center that is down within {3 * first_retry:.0f} s of"
        " the fallback [FED-015]",
    )
    mark = time.monotonic()
    latest = await _leave_home_area(sos, away)
    found = await h.wait_for(lambda c: c in h.forwards(away, second), PROMPT_S)
    check(
        bool(found),
        f"two fixes 11 s apart wholly outside the home area, but no forward to the center for her new"
        f" location within {PROMPT_S} s (the next regular recovery was {4 * first_retry:.0f} s away)"
        " [FED-019]",
    )
    check(found[0].at - mark <= PROMPT_S + 0.5, "the forward to the new area's center came too late")
    check(
        found[0].request.reason == federation_pb2.FORWARD_REASON_FALLBACK,
        f"a forward of an SOS handled in fallback has reason FALLBACK, got {found[0].request.reason}",
    )
    check(_same_place(found[0], *latest), "the forward does not carry her latest fix [FED-019]")


@case(
    "TC_FED_029_SRV",
    title="A home center's handoff carries the emergency as it is now: her duress cancel made while the"
    " home center handled it",
    requirements=["FED-019", "EMG-013"],
    profile=PROFILE,
    kind="positive",
    timeout=30,
)
async def home_handoff_carries_duress(ctx: CaseContext) -> None:
    h = await harness_for(ctx)
    away = h.slot(candidates=[h.peer("second")])
    sos = await _local_sos(ctx, h, duress_verifier=verifier())
    await sos.reporter.cancel(sos.name, code=DURESS_CODE)
    await _leave_home_area(sos, away)
    found = await _home_handoff(h, sos)
    check(bool(found), "no HandoffEmergency after two fixes 11 s apart outside the home area [FED-019]")
    check(
        found[0].request.emergency.duress,
        "she cancelled with her duress code before the handoff, but the HandoffEmergency says duress"
        " false: the new center would call her phone [EMG-013]",
    )
    check(_same_place(found[0], *away.point(0.0002)), "the handoff does not carry her latest fix")
