"""The FED-013 attempt schedule: retries with backoff, the second candidate, refusals, the 5 s budget."""

from __future__ import annotations

import asyncio
import random
import time

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from ansim_sdk.errors import AnsimError
from reference_server.domain.federation.connections import PeerIdentityMismatch
from reference_server.domain.federation.forwarder import run_schedule


def _rpc_error(code: grpc.StatusCode, reason: int | None = None) -> AioRpcError:
    trailing = Metadata()
    if reason is not None:
        status = AnsimError(reason, "refused").to_grpc_status()
        trailing = Metadata(*status.trailing_metadata)
    return AioRpcError(code, Metadata(), trailing, details="refused", debug_error_string="")


class Peer:
    def __init__(self, answers: dict[str, list[BaseException | str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, float, float]] = []

    async def send(self, center: str, deadline_s: float) -> str:
        self.calls.append((center, deadline_s, time.monotonic()))
        outcome = self.answers[center].pop(0) if self.answers[center] else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def test_three_attempts_with_backoff_then_the_second_candidate() -> None:
    down = [_rpc_error(grpc.StatusCode.UNAVAILABLE)] * 3
    peer = Peer({"centers/a": list(down), "centers/b": ["accepted-by-b"]})
    outcome = asyncio.run(run_schedule(["centers/a", "centers/b"], peer.send, rng=random.Random(1)))
    assert outcome.result == "accepted" and outcome.center == "centers/b"
    assert [c for c, _, _ in peer.calls] == ["centers/a"] * 3 + ["centers/b"]
    assert all(deadline <= 1.0 for _, deadline, _ in peer.calls)
    gaps = [peer.calls[i + 1][2] - peer.calls[i][2] for i in range(2)]
    assert 0.16 <= gaps[0] <= 0.35 and 0.32 <= gaps[1] <= 0.6  # 200 ms and 400 ms, ±20 %


def test_connection_and_identity_failures_are_retried_then_exhausted() -> None:
    peer = Peer({"centers/a": [OSError("refused"), PeerIdentityMismatch("pin"), TimeoutError()]})
    outcome = asyncio.run(run_schedule(["centers/a"], peer.send))
    assert outcome.result == "exhausted" and len(outcome.attempts) == 3
    assert {a.outcome for a in outcome.attempts} == {"failed"}


def test_permission_denied_is_not_retried() -> None:
    denied = _rpc_error(grpc.StatusCode.PERMISSION_DENIED, 15)
    peer = Peer({"centers/a": [denied], "centers/b": ["ok"]})
    outcome = asyncio.run(run_schedule(["centers/a", "centers/b"], peer.send))
    assert [c for c, _, _ in peer.calls] == ["centers/a", "centers/b"]
    assert outcome.result == "accepted"


@pytest.mark.parametrize(("reason", "result"), [(41, "loop"), (42, "not_responsible")])
def test_loop_and_not_responsible_end_the_schedule(reason: int, result: str) -> None:
    peer = Peer({"centers/a": [_rpc_error(grpc.StatusCode.FAILED_PRECONDITION, reason)]})
    outcome = asyncio.run(run_schedule(["centers/a", "centers/b"], peer.send))
    assert outcome.result == result and len(peer.calls) == 1


def test_everything_fits_in_the_budget() -> None:
    async def hang(center: str, deadline_s: float) -> str:
        await asyncio.sleep(deadline_s)
        raise TimeoutError

    began = time.monotonic()
    outcome = asyncio.run(run_schedule(["centers/a", "centers/b"], hang, budget_s=2.0))
    assert time.monotonic() - began < 3.0  # the schedule (3 tries and a second candidate) would run past it
    assert outcome.result == "exhausted"
