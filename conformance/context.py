"""What a test case works with: :class:`CaseContext` (one per case) on top of :class:`RunContext`
(one per run: channels, tokens, run id).

Every call a case makes through a channel or stub from its context is recorded (conformance.recorder)
and carries the right bearer token. Everything a case creates is TEST mode (:attr:`CaseContext.mode`)
and named with the run's prefix (:meth:`CaseContext.resource_id`), so a conformance run against a
production center never touches LIVE data and its leftovers are recognisable.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from ansim.v1 import common_pb2

from conformance.channels import open_channel
from conformance.declaration import Declaration, Fixtures
from conformance.outcomes import CaseNotApplicable, CaseSkipped
from conformance.recorder import Exchange, channel_interceptors, current_log, to_json
from conformance.tokens import Tokens
from conformance.wire import raw_unary

S = TypeVar("S")
M = TypeVar("M")
Cleanup = Callable[[], Awaitable[Any]]
#: Role a stub or raw call uses when the case does not say.
DEFAULT_ROLE = "CENTER_OPERATOR"


def new_run_id() -> str:
    """Eight lower-case hex digits: short enough for resource ids, random enough not to collide."""
    return secrets.token_hex(4)


class RunContext:
    """Per run: the declaration, the tokens, and one channel per (client certificate, token)."""

    def __init__(self, declaration: Declaration, run_id: str | None = None) -> None:
        self.declaration = declaration
        self.run_id = run_id or new_run_id()
        self.tokens = Tokens(declaration, self.run_id)
        #: Numbers the ids of :meth:`CaseContext.resource_id` across the whole run, so that cases
        #: running concurrently never share a resource or a subject.
        self.ids = itertools.count(1)
        self._channels: dict[tuple[str | None, str | None, bool], grpc.aio.Channel] = {}
        self._cleanups: list[Cleanup] = []

    @property
    def target(self) -> str:
        return self.declaration.target

    def channel(self, role: str | None, token: str | None, *, plaintext: bool = False) -> grpc.aio.Channel:
        """A channel presenting ``role``'s client certificate (if declared) and sending ``token``."""
        key = (role, token, plaintext)
        if key not in self._channels:
            identity = "no token" if token is None else f"role {role}" if role else "custom token"
            if plaintext:
                identity += ", plain text"
            interceptors = channel_interceptors(token, identity)
            self._channels[key] = open_channel(
                self.target, self.declaration.tls, role, interceptors, plaintext=plaintext
            )
        return self._channels[key]

    def on_cleanup(self, cleanup: Cleanup) -> None:
        """Run ``cleanup`` when the run ends (after every case)."""
        self._cleanups.append(cleanup)

    async def close(self) -> list[str]:
        """Run the run's cleanups (last first) and close every channel; returns cleanup problems."""
        problems = await run_cleanups(self._cleanups)
        await asyncio.gather(*(c.close(None) for c in self._channels.values()), return_exceptions=True)
        self._channels.clear()
        return problems


async def run_cleanups(cleanups: list[Cleanup]) -> list[str]:
    problems: list[str] = []
    while cleanups:
        cleanup = cleanups.pop()
        try:
            await cleanup()
        except Exception as error:
            problems.append(f"cleanup {getattr(cleanup, '__qualname__', cleanup)!r} failed: {error!r}")
    return problems


class CaseContext:
    """The API of a test case. See conformance/README.md for a worked example."""

    #: The mode of everything a case sends. Never LIVE.
    mode = common_pb2.MODE_TEST

    def __init__(self, run: RunContext, case_id: str, log: list[Exchange] | None = None) -> None:
        self.run = run
        self.case_id = case_id
        self.log: list[Exchange] = log if log is not None else []
        self.notes: list[str] = []
        self._cleanups: list[Cleanup] = []

    # --- the declaration ---------------------------------------------------------------------------

    @property
    def declaration(self) -> Declaration:
        return self.run.declaration

    @property
    def fixtures(self) -> Fixtures:
        return self.run.declaration.fixtures

    @property
    def tokens(self) -> Tokens:
        """Valid and deliberately broken tokens (``ctx.tokens.expired("APP_USER")`` …)."""
        return self.run.tokens

    def has_profile(self, profile: str) -> bool:
        return profile in self.declaration.profiles

    def has_feature(self, feature: str) -> bool:
        return feature in self.declaration.features

    def center(self) -> str:
        """``fixtures.center``; skips the case when the declaration has none."""
        if self.fixtures.center is None:
            self.skip("the declaration has no fixtures.center")
        assert self.fixtures.center is not None
        return self.fixtures.center

    # --- calling the target ------------------------------------------------------------------------

    def channel(self, role: str | None = DEFAULT_ROLE, *, token: str | None = None) -> grpc.aio.Channel:
        """A recorded channel that calls as ``role`` (its token and client certificate).

        ``token`` sends that token instead of the role's (the role then only picks the client
        certificate); ``role=None`` without a token sends no token at all.
        """
        if token is None and role is not None:
            token = self.tokens.token(role)
        return self.run.channel(role, token)

    def stub(
        self,
        stub_class: Callable[[grpc.aio.Channel], S],
        role: str | None = DEFAULT_ROLE,
        *,
        token: str | None = None,
    ) -> S:
        """A generated stub on :meth:`channel`, e.g. ``ctx.stub(camera_pb2_grpc.CameraServiceStub)``."""
        return stub_class(self.channel(role, token=token))

    def raw(
        self,
        method: str,
        payload: bytes,
        role: str | None = DEFAULT_ROLE,
        *,
        token: str | None = None,
        timeout: float | None = None,
    ) -> grpc.aio.UnaryUnaryCall[bytes, bytes]:
        """Send ``payload`` as the request bytes of ``method`` (``/ansim.v1.X/Y``), bypassing client
        serialization and validation. Await it (or pass it to expect_ok / expect_error)."""
        return raw_unary(self.channel(role, token=token), method, payload, timeout=timeout)

    def plaintext_channel(self) -> grpc.aio.Channel:
        """A recorded plain-text channel to the target, without a token (SEC-001 probes)."""
        return self.run.channel(None, None, plaintext=True)

    async def read_stream(self, call: AsyncIterator[M], count: int, wait_s: float = 5.0) -> list[M]:
        """Read up to ``count`` messages of a server stream within ``wait_s`` seconds; they are added
        to the stream's exchange in the log. Fewer messages come back when the stream ends or the
        time is up."""
        exchange = self.log[-1] if self.log else None
        received: list[M] = []

        async def read() -> None:
            async for message in call:
                received.append(message)
                if exchange is not None:
                    exchange.stream_responses.append(to_json(message))
                if len(received) >= count:
                    return

        try:
            await asyncio.wait_for(read(), wait_s)
        except TimeoutError:
            self.note(f"read_stream: {len(received)} of {count} messages within {wait_s} s")
        return received

    # --- names, ids, cleanup, outcome --------------------------------------------------------------

    def resource_id(self, kind: str) -> str:
        """A resource id ``conformance-<run>-<kind>-<n>`` (matches ``[a-z0-9][a-z0-9-]{0,62}``), unique
        in the run: ``n`` counts over every case of the run, not per case."""
        value = f"conformance-{self.run.run_id}-{kind.lower()}-{next(self.run.ids)}"
        if len(value) > 63:
            raise ValueError(f"resource id {value!r} is longer than 63 characters; use a shorter kind")
        return value

    @staticmethod
    def request_id() -> str:
        """A fresh idempotency key (a UUID, as IDM-001 requires)."""
        return str(uuid.uuid4())

    def on_cleanup(self, cleanup: Cleanup) -> None:
        """Run ``cleanup`` after the case, whatever its verdict (last registered first)."""
        self._cleanups.append(cleanup)

    async def cleanup(self) -> list[str]:
        return await run_cleanups(self._cleanups)

    def note(self, text: str) -> None:
        """Add a line to the case's report entry."""
        self.notes.append(text)

    def skip(self, reason: str) -> None:
        """End the case with verdict SKIP. A skipped MUST case keeps its profile from passing."""
        raise CaseSkipped(reason)

    def not_applicable(self, reason: str) -> None:
        """End the case with verdict NOT_APPLICABLE: what it tests does not apply to this target as
        declared (e.g. an insecure-mode rule against a TLS target). Never for a missing fixture."""
        raise CaseNotApplicable(reason)

    def last_exchange(self) -> Exchange | None:
        log = current_log() or self.log
        return log[-1] if log else None
