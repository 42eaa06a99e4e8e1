"""Client-mode cases of the **reader-gateway** profile: checks over what a reader gateway sent the
harness center (conformance/harness/gateway_center.py describes the scenario and its faults).

Needs a lab: GW-005 (observed_time from a clock within 1 s of UTC), GW-008 (reporting rate and
24-hour buffer), and the non-volatile storage half of GW-003 (needs a power cut).
"""

from __future__ import annotations

import itertools

from ansim.v1 import child_safety_pb2

from conformance import CaseContext, case
from conformance.harness import checks
from conformance.harness.gateway_center import (
    ACCEPTED,
    BACKLOG,
    DUPLICATE,
    MAX_OUTSTANDING,
    REJECTED,
    _events,
)
from conformance.harness.recording import Call

C = child_safety_pb2
P = "reader-gateway"
RPCS = ("IngestTagEvents", "SubmitTagEvents")


def _calls(ctx: CaseContext) -> list[Call]:
    s = checks.session(ctx)
    calls = [c for c in s.recording.calls if c.rpc in RPCS and c.listener == "main"]
    if not calls:
        checks.fail(f"the gateway sent no events (scenario at {s.scenario.current_name})")
    return calls


def _sent(call: Call) -> list[tuple[float, C.TagEvent]]:
    return [(item.at, e) for item in call.requests for e in _events(item.message)]


def _acks(call: Call) -> dict[str, int]:
    out: dict[str, int] = {}
    for sent in call.responses:
        message = sent.message
        acks = [message] if isinstance(message, C.TagEventAck) else list(getattr(message, "acks", []))
        for ack in acks:
            out[ack.event_id] = ack.status
    return out


def _content(event: C.TagEvent) -> bytes:
    return event.SerializeToString(deterministic=True)


@case(
    "TC_GW_001_CLT",
    title="Each event has a random (version 4) UUID event_id, never used for a second event",
    requirements=["GW-001"],
    profile=P,
    kind="positive",
)
async def event_ids(ctx: CaseContext) -> None:
    first: dict[str, tuple[bytes, Call]] = {}
    for call in _calls(ctx):
        for _, event in _sent(call):
            if not checks.UUID4.match(event.event_id):
                checks.show(ctx, [call])
                checks.fail(f"event_id {event.event_id!r} is not a version 4 UUID", call)
            if event.event_id in first and first[event.event_id][0] != _content(event):
                checks.show(ctx, [first[event.event_id][1], call])
                checks.fail(f"event_id {event.event_id} was used for a second, different event", call)
            first.setdefault(event.event_id, (_content(event), call))


@case(
    "TC_GW_002_CLT",
    title="After a stream or call fails, every event without an ACCEPTED or DUPLICATE ack is resent with "
    "the same event_id and identical content",
    requirements=["GW-002"],
    profile=P,
    kind="negative",
)
async def unacked_resent(ctx: CaseContext) -> None:
    calls = _calls(ctx)
    checks.show(ctx, calls[:3])
    content: dict[str, bytes] = {}
    settled: set[str] = set()
    owed: dict[str, Call] = {}
    for call in calls:
        for _, event in _sent(call):
            eid = event.event_id
            if eid in owed and content[eid] != _content(event):
                checks.fail(f"event {eid} was resent with content different from its first sending", call)
            content.setdefault(eid, _content(event))
            owed.pop(eid, None)
        acks = _acks(call)
        settled |= {e for e, s in acks.items() if s in (ACCEPTED, DUPLICATE, REJECTED)}
        if call.ended is not None and not call.ok:
            for _, event in _sent(call):
                if event.event_id not in settled:
                    owed[event.event_id] = call
    if owed:
        eid, call = next(iter(owed.items()))
        checks.fail(
            f"{len(owed)} event(s) without an ack were never resent, e.g. {eid} of call #{call.id}", call
        )


@case(
    "TC_GW_003_CLT",
    title="An event acknowledged REJECTED is not resent unchanged",
    requirements=["GW-003"],
    profile=P,
    kind="negative",
)
async def rejected_not_resent(ctx: CaseContext) -> None:
    rejected: dict[str, tuple[float, bytes]] = {}
    sends: list[tuple[float, Call, C.TagEvent]] = []
    for call in _calls(ctx):
        sends += [(at, call, event) for at, event in _sent(call)]
        for sent in call.responses:
            acks = (
                [sent.message]
                if isinstance(sent.message, C.TagEventAck)
                else list(getattr(sent.message, "acks", []))
            )
            for ack in acks:
                if ack.status == REJECTED and ack.event_id not in rejected:
                    first = next((e for _, c, e in sends if e.event_id == ack.event_id), None)
                    if first is not None:
                        rejected[ack.event_id] = (sent.at, _content(first))
    checks.require(ctx, bool(rejected), "the harness rejected no event (the unknown-tag sighting never came)")
    for at, call, event in sends:
        when, content = rejected.get(event.event_id, (float("inf"), b""))
        if at > when and _content(event) == content:
            checks.show(ctx, [call])
            checks.fail(f"event {event.event_id} was acknowledged REJECTED and sent again unchanged", call)


@case(
    "TC_GW_004_CLT",
    title="A button press goes before events buffered longer; other events of a reader go in "
    "observed_time order",
    requirements=["GW-004"],
    profile=P,
    kind="negative",
)
async def press_first(ctx: CaseContext) -> None:
    pressed = False
    for call in _calls(ctx):
        events = [e for _, e in _sent(call)]
        others = [
            e for e in events if e.kind not in (C.TAG_EVENT_KIND_BUTTON_PRESS, C.TAG_EVENT_KIND_BELL_PRESS)
        ]
        for before, after in itertools.pairwise(others):
            if (
                before.reader == after.reader
                and after.observed_time.ToNanoseconds() < before.observed_time.ToNanoseconds()
            ):
                checks.show(ctx, [call])
                checks.fail(
                    f"event {after.event_id} was sent after a later-observed event of the same reader", call
                )
        for n, event in enumerate(events):
            if event.kind == C.TAG_EVENT_KIND_BUTTON_PRESS:
                pressed = True
                older = [
                    e
                    for e in events[:n]
                    if e.observed_time.ToNanoseconds() < event.observed_time.ToNanoseconds()
                ]
                if older:
                    checks.show(ctx, [call])
                    checks.fail(
                        f"the button press {event.event_id} was sent after {len(older)} "
                        "event(s) buffered longer",
                        call,
                    )
    checks.require(ctx, pressed, "the gateway sent no BUTTON_PRESS (step offline_then_press)")


@case(
    "TC_GW_005_CLT",
    title="After a failed call the gateway waits at least the RetryInfo delay before the next attempt",
    requirements=["GW-006"],
    profile=P,
    kind="negative",
)
async def waits_retry_delay(ctx: CaseContext) -> None:
    calls = _calls(ctx)
    failed = [c for c in calls if c.retry_delay_s is not None and c.ended is not None]
    checks.require(ctx, bool(failed), "no call failed with RetryInfo")
    for call in failed:
        later = [c for c in calls if c.started >= (call.ended or 0)]
        if not later:
            continue
        gap = later[0].started - (call.ended or 0)
        delay = call.retry_delay_s or 0
        if gap < delay * 0.5:
            checks.show(ctx, [call, later[0]])
            checks.fail(
                f"the next attempt came {gap:.3f} s after a failure with RetryInfo {delay:g} s", later[0]
            )


@case(
    "TC_GW_006_CLT",
    title="No more than 500 events are outstanding without an ack on one IngestTagEvents stream",
    requirements=["GW-007"],
    profile=P,
    kind="negative",
)
async def outstanding_window(ctx: CaseContext) -> None:
    calls = [c for c in _calls(ctx) if c.rpc == "IngestTagEvents"]
    total = sum(len(c.requests) for c in calls)
    checks.require(
        ctx, total >= BACKLOG, f"the gateway sent {total} events; the backlog step asks for {BACKLOG}"
    )
    for call in calls:
        timeline = [(item.at, 1) for item in call.requests] + [(s.at, -1) for s in call.responses]
        outstanding = peak = 0
        for _, delta in sorted(timeline, key=lambda x: (x[0], x[1])):
            outstanding += delta
            peak = max(peak, outstanding)
        if peak > MAX_OUTSTANDING:
            checks.show(ctx, [call])
            checks.fail(f"{peak} events were outstanding without an ack on IngestTagEvents #{call.id}", call)


@case(
    "TC_GW_007_CLT",
    title="A SubmitTagEvents that failed UNAVAILABLE is retried with the same request_id and events",
    requirements=["IDM-004", "GW-002"],
    profile=P,
    kind="negative",
)
async def submit_retried(ctx: CaseContext) -> None:
    checks.retried_with_same_id(ctx, "SubmitTagEvents")


@case(
    "TC_GW_008_CLT",
    title="SubmitTagEvents carries a UUID request_id, fresh for each new batch",
    requirements=["IDM-004"],
    profile=P,
    kind="positive",
)
async def submit_request_ids(ctx: CaseContext) -> None:
    checks.request_ids_are_uuids(ctx)
    checks.fresh_ids_for_new_operations(ctx)


@case(
    "TC_GW_009_CLT",
    title="No request breaks the buf.validate constraints of its message (locations in range)",
    requirements=["GEN-031", "LOC-002"],
    profile=P,
    kind="positive",
)
async def requests_valid(ctx: CaseContext) -> None:
    checks.requests_valid(ctx)


@case(
    "TC_GW_010_CLT",
    title="Acks with unknown fields do not stop the gateway",
    requirements=["GEN-004"],
    profile=P,
    kind="negative",
)
async def tolerates_unknown(ctx: CaseContext) -> None:
    checks.survived_unknown_content(ctx)


@case(
    "TC_GW_011_CLT",
    title="The gateway refuses a center whose certificate its trust anchors do not sign, sending nothing",
    requirements=["SEC-004"],
    profile=P,
    kind="negative",
)
async def verifies_certificate(ctx: CaseContext) -> None:
    checks.verifies_server_certificate(ctx)


@case(
    "TC_GW_012_CLT",
    title="A stream that failed UNAVAILABLE with an unknown reason and a 'do not retry' text is retried",
    requirements=["ERR-005", "ERR-006"],
    profile=P,
    kind="negative",
)
async def retries_by_code(ctx: CaseContext) -> None:
    calls = [c for c in _calls(ctx) if c.rpc == "IngestTagEvents"]
    first = calls[0]
    checks.show(ctx, calls[:2])
    checks.require(
        ctx, first.code == "UNAVAILABLE", "the harness did not get to break the first stream", first
    )
    checks.require(ctx, len(calls) > 1, "the gateway did not reconnect after UNAVAILABLE", first)
