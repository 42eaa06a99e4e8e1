"""What the harness saw: every call a client made, with its metadata, each request message with its
arrival time and protovalidate violations, each response with its send time, and how the call ended.

Times are seconds since the harness started (monotonic), so a case can check order and intervals
without caring about wall clocks. A stream call is one :class:`Call`; its boundaries (open, each
message, end) are what the resume and resend checks look at.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from ansim_sdk.errors import FieldViolation
from ansim_sdk.validation import violations_of
from conformance.recorder import Exchange, to_json


@dataclass
class Received:
    """One request message as it arrived."""

    at: float
    message: Message
    violations: list[FieldViolation]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at_s": round(self.at, 3), "message": to_json(self.message)}
        if self.violations:
            out["violations"] = [f"{v.field}: {v.description}" for v in self.violations]
        return out


@dataclass
class Sent:
    """One response message the harness sent."""

    at: float
    message: Message


@dataclass
class Call:
    """One rpc as the harness served it."""

    id: int
    #: Short rpc name, e.g. ``RaiseEmergency``.
    rpc: str
    service: str
    started: float
    metadata: dict[str, str]
    #: ``main`` or ``untrusted`` (the listener with a certificate a client must refuse, SEC-004).
    listener: str = "main"
    requests: list[Received] = field(default_factory=list)
    responses: list[Sent] = field(default_factory=list)
    ended: float | None = None
    code: str = "PENDING"
    details: str = ""
    #: What the harness did on purpose to this call (``UNAVAILABLE once``, ``cut after 3`` …).
    faults: list[str] = field(default_factory=list)
    #: The RetryInfo delay the harness sent when it failed the call on purpose.
    retry_delay_s: float | None = None

    @property
    def method(self) -> str:
        return f"/{self.service}/{self.rpc}"

    @property
    def request(self) -> Message | None:
        return self.requests[0].message if self.requests else None

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def has_token(self) -> bool:
        return "authorization" in self.metadata  # the value is redacted when recorded

    def to_exchange(self) -> Exchange:
        """This call as a wire exchange for the reports (the suite's usual format)."""
        first = self.requests[0] if self.requests else None
        many = len(self.requests) != 1
        exchange = Exchange(
            method=self.method,
            request={"stream": [r.to_dict() for r in self.requests]}
            if many
            else (first.to_dict() if first else None),
            request_metadata=dict(self.metadata),
            code=self.code,
            details=self.details + (f" [harness: {'; '.join(self.faults)}]" if self.faults else ""),
            identity=f"client under test ({self.listener} listener)",
        )
        if len(self.responses) == 1 and self.rpc not in STREAMING_RESPONSES:
            exchange.response = to_json(self.responses[0].message)
        else:
            exchange.stream_responses = [to_json(s.message) for s in self.responses]
        exchange.elapsed_s = (self.ended if self.ended is not None else self.started) - self.started
        return exchange


#: rpcs whose responses are a stream.
STREAMING_RESPONSES = frozenset(
    {"StreamLocation", "WatchEmergency", "IngestTagEvents", "SubscribeDispatches"}
)


class Recording:
    """Every call the harness served, in the order they started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        #: Wall-clock time (epoch seconds) of ``t0``, to compare with timestamps in messages.
        self.wall0 = time.time()
        self.calls: list[Call] = []
        self._ids = itertools.count(1)
        #: What the client's test driver reported with ``POST /done``: step → report body.
        self.reports: dict[str, dict[str, Any]] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def wall(self, at: float) -> float:
        """Epoch seconds of recording time ``at``."""
        return self.wall0 + at

    def open(self, service: str, rpc: str, metadata: dict[str, str], listener: str = "main") -> Call:
        call = Call(next(self._ids), rpc, service, self.now(), metadata, listener)
        self.calls.append(call)
        return call

    def receive(self, call: Call, message: Message) -> Received:
        item = Received(self.now(), message, violations_of(message))
        call.requests.append(item)
        return item

    def send(self, call: Call, message: Message) -> None:
        call.responses.append(Sent(self.now(), message))

    def close(self, call: Call, code: str, details: str = "") -> None:
        if call.ended is None:
            call.ended = self.now()
            call.code = code
            call.details = details

    def of(self, rpc: str, listener: str = "main") -> list[Call]:
        return [c for c in self.calls if c.rpc == rpc and c.listener == listener]

    def on(self, listener: str) -> list[Call]:
        return [c for c in self.calls if c.listener == listener]

    def requests(self, listener: str = "main") -> Iterator[tuple[Call, Received]]:
        for call in self.calls:
            if call.listener == listener:
                for item in call.requests:
                    yield call, item
