"""What a service plugin gets: the shared parts of the running center, and the plugin signature."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc.aio
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from reference_server.clock import Clock
from reference_server.config import CenterSettings
from reference_server.domain.ports import DomainPorts
from reference_server.events.publisher import Publisher
from reference_server.lifecycle import Lifecycle
from reference_server.security.tokens import TokenIssuer, TokenVerifier
from reference_server.store.sqlite import SqliteStore


@dataclass
class ServerContext:
    """Shared parts of one running center, handed to every service plugin."""

    settings: CenterSettings
    store: SqliteStore
    publisher: Publisher
    clock: Clock
    #: Verifies callers' bearer tokens (the auth interceptor uses it; federation clients may too).
    tokens: TokenVerifier
    health: health_aio.HealthServicer
    #: The demo token issuer; None unless started with ``--demo``.
    demo_issuer: TokenIssuer | None = None
    #: Ports through which the domain areas call each other (installed by their plugins).
    domain: DomainPorts = field(default_factory=DomainPorts)
    #: Background tasks started by plugins (timers); cancelled at shutdown before the store closes.
    background: list[asyncio.Task[None]] = field(default_factory=list)
    #: Stop hooks of components with their own loops (schedulers, federation); with ``background``,
    #: stopped after the server stops accepting calls and before the store closes.
    lifecycle: Lifecycle = field(default_factory=Lifecycle)


#: A service plugin registers its servicer(s) on the server and returns the full names of the
#: services it registered (e.g. ``"ansim.v1.EmergencyService"``), which get health status and
#: reflection. It may keep ``ctx`` for later use by its servicer.
ServicePlugin = Callable[[ServerContext, grpc.aio.Server], Sequence[str]]

#: A demo seed writes demo data (cameras, wards, ...) when the center starts with ``--demo``.
DemoSeed = Callable[[ServerContext], Awaitable[None]]
