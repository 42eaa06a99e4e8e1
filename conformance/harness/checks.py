"""Checks over a harness recording, shared by the client-mode cases of every client profile.

A check passes by returning and fails with ConformanceFailure carrying the recorded call that shows
the problem (converted to the suite's wire exchange, so reports show it like a server-mode call).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from google.protobuf.message import Message

from conformance.context import CaseContext
from conformance.harness.recording import Call, Received
from conformance.harness.scenario import FINISHED
from conformance.harness.session import HarnessSession, session_for
from conformance.outcomes import ConformanceFailure

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
UUID4 = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$")
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}


def session(ctx: CaseContext) -> HarnessSession:
    return session_for(ctx)


def show(ctx: CaseContext, calls: Iterable[Call]) -> None:
    """Add calls to the case's log (the report shows them as its evidence)."""
    for call in calls:
        ctx.log.append(call.to_exchange())


def fail(message: str, call: Call | None = None) -> None:
    raise ConformanceFailure(message, call.to_exchange() if call is not None else None)


def require(ctx: CaseContext, condition: bool, message: str, call: Call | None = None) -> None:
    if not condition:
        fail(message, call)


def calls_of(s: HarnessSession, rpc: str) -> list[Call]:
    return s.recording.of(rpc)


def need_calls(ctx: CaseContext, s: HarnessSession, rpc: str, why: str) -> list[Call]:
    found = calls_of(s, rpc)
    if not found:
        fail(f"the client made no {rpc} call ({why}); scenario stopped at step {s.scenario.current_name}")
    show(ctx, found)
    return found


def request_id_of(message: Message) -> str | None:
    """The message's request_id, or None when its type has none."""
    if "request_id" not in message.DESCRIPTOR.fields_by_name:
        return None
    field = "request_id"
    return str(getattr(message, field))


def payload_key(message: Message) -> bytes:
    """The message without its request_id (what makes two requests 'the same operation')."""
    copy = type(message)()
    copy.CopyFrom(message)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return copy.SerializeToString(deterministic=True)


def mutating(s: HarnessSession) -> list[tuple[Call, Received, str]]:
    out = []
    for call, item in s.recording.requests():
        rid = request_id_of(item.message)
        if rid is not None:
            out.append((call, item, rid))
    return out


# --- checks shared by every client profile ------------------------------------------------------


def request_ids_are_uuids(ctx: CaseContext) -> None:
    """Every mutating request carries a request_id that is a UUID."""
    s = session(ctx)
    found = mutating(s)
    require(ctx, bool(found), f"no mutating request was recorded (scenario at {s.scenario.current_name})")
    show(ctx, {id(c): c for c, _, _ in found}.values())
    for call, _, rid in found:
        if not rid:
            fail(f"{call.rpc} carries no request_id", call)
        if not UUID.match(rid):
            fail(f"{call.rpc} request_id {rid!r} is not a UUID", call)


def fresh_ids_for_new_operations(ctx: CaseContext) -> None:
    """No request_id is used for two different operations (another rpc or another payload)."""
    s = session(ctx)
    seen: dict[str, tuple[Call, str, bytes]] = {}
    found = mutating(s)
    require(ctx, bool(found), "no mutating request was recorded")
    show(ctx, {id(c): c for c, _, _ in found}.values())
    for call, item, rid in found:
        if not rid:
            continue
        key = payload_key(item.message)
        if rid in seen and seen[rid][1:] != (call.rpc, key):
            first = seen[rid][0]
            fail(
                f"request_id {rid} of a new operation ({call.rpc} #{call.id}) was already used for another "
                f"operation ({first.rpc} #{first.id}); each new operation needs a fresh request_id",
                call,
            )
        seen.setdefault(rid, (call, call.rpc, key))


def retried_with_same_id(ctx: CaseContext, rpc: str) -> None:
    """The harness failed the first call of ``rpc`` with UNAVAILABLE (an unknown reason or a
    misleading text, depending on the rpc): the client retried, with the same request_id, until it
    got an answer."""
    s = session(ctx)
    found = need_calls(ctx, s, rpc, "the scenario asks for it")
    first = found[0]
    require(ctx, first.code in RETRYABLE, f"the harness did not get to fail the first {rpc}", first)
    retries = [
        c
        for c in found[1:]
        if c.request and first.request and payload_key(c.request) == payload_key(first.request)
    ]
    if not retries:
        others = found[1:]
        if others:
            fail(
                f"the {rpc} after the injected UNAVAILABLE is not a retry of the same operation: its "
                "payload differs",
                others[0],
            )
        fail(
            f"the client did not retry {rpc} after UNAVAILABLE ({first.faults[0] if first.faults else ''})",
            first,
        )
    want = request_id_of(first.request) if first.request else None
    for retry in retries:
        got = request_id_of(retry.request) if retry.request else None
        if got != want:
            fail(f"the retry of {rpc} carries request_id {got!r}, not the first attempt's {want!r}", retry)
    if not any(c.ok for c in retries):
        fail(f"no retry of {rpc} got through", retries[-1])


def retry_waits(ctx: CaseContext, rpc: str, at_least_s: float) -> None:
    """The retry after the injected UNAVAILABLE came no sooner than its RetryInfo delay."""
    s = session(ctx)
    found = need_calls(ctx, s, rpc, "the scenario asks for it")
    first = found[0]
    if len(found) < 2 or first.ended is None:
        fail(f"no retry of {rpc} after UNAVAILABLE", first)
    gap = found[1].started - (first.ended or 0.0)
    require(
        ctx,
        gap >= at_least_s * 0.5,
        f"the client retried {rpc} {gap:.3f} s after UNAVAILABLE, sooner than the {at_least_s:g} s the "
        "RetryInfo asked for",
        found[1],
    )


def requests_valid(ctx: CaseContext) -> None:
    """No request breaks the buf.validate rules of its message."""
    s = session(ctx)
    require(ctx, bool(s.recording.calls), "the client made no call")
    for call, item in s.recording.requests():
        if item.violations:
            show(ctx, [call])
            broken = "; ".join(f"{v.field}: {v.description}" for v in item.violations)
            fail(
                f"{call.rpc} request #{call.requests.index(item) + 1} breaks its constraints: {broken}", call
            )


def survived_unknown_content(ctx: CaseContext) -> None:
    """Every response and event carried fields the standard does not define, some an enum value it
    does not define: the client carried on to the end of the scenario."""
    s = session(ctx)
    require(
        ctx,
        s.scenario.current_name == FINISHED,
        "the client stopped following the scenario at step "
        f"{s.scenario.current_name} after receiving responses with unknown fields and enum values",
    )


def verifies_server_certificate(ctx: CaseContext) -> None:
    """The client was pointed at a listener whose certificate its trust anchors do not sign: no call
    (and so no token) reached it."""
    s = session(ctx)
    if not s.tls:
        ctx.skip("the harness runs without TLS (--insecure); SEC-004 needs a TLS run")
    reached = s.recording.on("untrusted")
    if reached:
        show(ctx, reached)
        tokens = sum(c.has_token() for c in reached)
        fail(
            f"{len(reached)} call(s) reached the listener with an untrusted certificate ({tokens} with a "
            "bearer token): the client did not verify the server's certificate",
            reached[0],
        )
    require(
        ctx,
        any(name == "tls_check" for name, _ in s.scenario.history),
        "the tls_check step was not done: the client was never pointed at the untrusted listener",
    )


def report(s: HarnessSession, step: str) -> dict[str, Any] | None:
    return s.recording.reports.get(step)


def processed_once(ctx: CaseContext, step: str) -> None:
    """The driver's report: the cursors of the events the client processed, none twice."""
    s = session(ctx)
    body = report(s, step)
    if body is None or "processed_cursors" not in body:
        ctx.skip(
            f"needs the test driver's report (POST /done with processed_cursors for step {step}); "
            "with a human operator, confirm on screen that no event was shown twice"
        )
    assert body is not None
    cursors = [str(c) for c in body["processed_cursors"]]
    twice = sorted({c for c in cursors if cursors.count(c) > 1})
    require(ctx, not twice, f"the client processed redelivered events again (cursors {', '.join(twice)})")


def open_until_finished(ctx: CaseContext, call: Call, what: str) -> None:
    """``call`` was still open when the scenario finished (a client may end it after that)."""
    s = session(ctx)
    end = s.scenario.finished_at
    if call.ended is not None and (end is None or call.ended < end):
        fail(f"the client let its {what} end ({call.code}) before the scenario finished", call)
