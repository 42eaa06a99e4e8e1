"""The attempt schedule of a forward (spec §17.4, FED-013).

At most three attempts to ``candidates[0]`` (deadline 1 s each; the second 200 ms and the third
400 ms, ±20 %, after the previous failed; the same request), then at most one to ``candidates[1]``,
all within 5 s of the emergency becoming RAISED. A *failed* attempt (UNAVAILABLE, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED, INTERNAL, a connection or TLS failure, a peer identity mismatch, a response that
makes no sense) is retried; PERMISSION_DENIED and INVALID_ARGUMENT go straight to the next
candidate; FORWARDING_LOOP and NOT_RESPONSIBLE end the schedule for the caller to handle (§17.3).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import grpc
import grpc.aio

from ansim_sdk.errors import parse_rpc_error
from reference_server.domain.federation.connections import PeerIdentityMismatch

R = TypeVar("R")

ATTEMPT_DEADLINE_S = 1.0
BACKOFFS_S = (0.2, 0.4)
JITTER = 0.2
TOTAL_BUDGET_S = 5.0
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    }
)


class ResponseInvalid(Exception):
    """A response that does not make sense [FED-011]: a failed attempt."""


@dataclass(frozen=True)
class Attempt:
    center: str
    outcome: str  # accepted | failed | refused | loop | not_responsible
    detail: str
    seconds: float


@dataclass
class Outcome(Generic[R]):
    response: R | None = None
    center: str = ""
    #: accepted | loop | not_responsible | exhausted
    result: str = "exhausted"
    attempts: list[Attempt] = field(default_factory=list)


def classify(error: BaseException) -> tuple[str, str]:
    """(outcome, detail) of a failed call."""
    if isinstance(error, grpc.aio.AioRpcError):
        code = error.code()
        try:
            reason = parse_rpc_error(error).reason
        except ValueError:
            reason = ""
        detail = f"{code.name} {reason}".strip()
        if code in RETRYABLE:
            return "failed", detail
        if reason == "FORWARDING_LOOP":
            return "loop", detail
        if reason == "NOT_RESPONSIBLE":
            return "not_responsible", detail
        return "refused", detail
    if isinstance(error, PeerIdentityMismatch):
        return "failed", f"peer identity mismatch: {error}"
    if isinstance(error, ResponseInvalid):
        return "failed", f"response does not make sense: {error}"
    if isinstance(error, (OSError, TimeoutError, asyncio.TimeoutError, ssl.SSLError)):
        return "failed", f"connection failed: {type(error).__name__}"
    return "failed", f"{type(error).__name__}: {error}"


async def run_schedule(
    candidates: Sequence[str],
    send: Callable[[str, float], Awaitable[R]],
    *,
    started: float | None = None,
    budget_s: float = TOTAL_BUDGET_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> Outcome[R]:
    """Run the FED-013 schedule over ``candidates`` (already filtered: no self, no suspended peer).

    ``send(center, timeout)`` makes one attempt; ``started`` is the monotonic time the emergency
    became RAISED (default: now).
    """
    rng = rng or random.Random()
    start = time.monotonic() if started is None else started
    outcome: Outcome[R] = Outcome()
    plan: list[tuple[str, float]] = []
    if candidates:
        plan = [(candidates[0], 0.0), (candidates[0], BACKOFFS_S[0]), (candidates[0], BACKOFFS_S[1])]
    if len(candidates) > 1:
        plan.append((candidates[1], 0.0))
    skip_to_next = False
    for index, (center, backoff) in enumerate(plan):
        if skip_to_next and center == candidates[0]:
            continue
        if index > 0 and backoff and center == plan[index - 1][0]:
            pause = backoff * rng.uniform(1 - JITTER, 1 + JITTER)
            if budget_s - (time.monotonic() - start) - pause <= 0.05:
                break
            await sleep(pause)
        left = budget_s - (time.monotonic() - start)
        if left <= 0.05:
            break
        timeout = min(ATTEMPT_DEADLINE_S, left)
        began = time.monotonic()
        try:
            response = await send(center, timeout)
        except Exception as error:  # classified below; nothing escapes the schedule
            result, detail = classify(error)
            outcome.attempts.append(Attempt(center, result, detail, time.monotonic() - began))
            if result in ("loop", "not_responsible"):
                outcome.result, outcome.center = result, center
                return outcome
            if result == "refused":
                skip_to_next = True
            continue
        outcome.attempts.append(Attempt(center, "accepted", "", time.monotonic() - began))
        outcome.response, outcome.center, outcome.result = response, center, "accepted"
        return outcome
    return outcome
