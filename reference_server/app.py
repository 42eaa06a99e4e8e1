"""Build, run and gracefully stop one reference center.

The server gets, outermost first: metrics → logging → spec version → error mapping → auth (→
live-mode guard in insecure development mode), installed as one ``InterceptorChain``. Observers sit
outside auth so that refused calls are counted and logged too, and error mapping wraps auth so that
its refusals carry the same rich statuses as domain errors. Then come the health service
(per-service status), reflection (every registered service) and the servicers of the service
plugins.

Shutdown (SIGTERM / SIGINT or :meth:`CenterServer.stop`): health goes NOT_SERVING, event streams
end cleanly (OK, resumable by cursor), the server stops accepting calls and gives in-flight ones the
configured grace, then the background work of the plugins stops (``ServerContext.lifecycle``), then
the store closes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from reference_server.clock import Clock, SystemClock
from reference_server.config import CenterSettings
from reference_server.context import DemoSeed, ServerContext, ServicePlugin
from reference_server.events.cursor import load_or_create_key
from reference_server.events.publisher import Publisher
from reference_server.gc_tuning import settle_after_start
from reference_server.interceptors.auth import AuthInterceptor
from reference_server.interceptors.chain import InterceptorChain
from reference_server.interceptors.errors import ErrorMappingInterceptor
from reference_server.interceptors.live_mode import LiveModeGuard
from reference_server.interceptors.logging import LoggingInterceptor
from reference_server.interceptors.metrics import MetricsInterceptor
from reference_server.interceptors.spec_version import SpecVersionInterceptor
from reference_server.interceptors.wrapping import AroundInterceptor
from reference_server.security.tls import mtls_server_credentials, server_credentials
from reference_server.security.tokens import TokenIssuer, TokenVerifier
from reference_server.store.sqlite import SqliteStore

log = logging.getLogger("ansim.server")

DATABASE_FILE = "center.sqlite"
CURSOR_KEY_FILE = "cursor.key"
HOUSEKEEPING_INTERVAL_S = 60.0
#: grpc.aio takes new calls from grpc's core one at a time, on the event loop. When that loop is busy
#: for long (a thousand event streams opening at once, each with its replay), calls wait in the
#: core's pending queue, and by default the core cancels every call that waited there 30 s: the
#: client sees CANCELLED and the center never sees the call. A center serves such calls late rather
#: than dropping them silently, so they may wait as long as a client would plausibly wait.
MAX_UNREQUESTED_TIME_S = 600
SERVER_OPTIONS = (("grpc.server_max_unrequested_time_in_server", MAX_UNREQUESTED_TIME_S),)


def interceptors(settings: CenterSettings, verifier: TokenVerifier) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    """The layers above, installed as one interceptor (one handler wrap per method, see chain)."""
    layers: list[AroundInterceptor] = [
        MetricsInterceptor(),
        LoggingInterceptor(),
        SpecVersionInterceptor(),
        ErrorMappingInterceptor(),
        AuthInterceptor(
            verifier,
            served_roles=settings.roles,
            cert_required_roles=() if settings.insecure_dev else settings.tls.client_cert_required_roles,
        ),
    ]
    if settings.insecure_dev:
        layers.append(LiveModeGuard())
    return [InterceptorChain(layers)]


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class CenterServer:
    """One running center: server, store, publisher and housekeeping."""

    def __init__(self, ctx: ServerContext, server: grpc.aio.Server, services: Sequence[str]) -> None:
        self.ctx = ctx
        self.server = server
        self.services = tuple(services)
        self.port = 0
        #: Port of the mutual-TLS listener, 0 when there is none.
        self.mtls_port = 0
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self._metrics_http: Any = None

    @classmethod
    async def create(
        cls,
        settings: CenterSettings,
        plugins: Sequence[ServicePlugin] = (),
        *,
        clock: Clock | None = None,
        demo_issuer: TokenIssuer | None = None,
        demo_seeds: Sequence[DemoSeed] = (),
    ) -> CenterServer:
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = await SqliteStore.open(
            settings.data_dir / DATABASE_FILE, clock=clock, idempotency_ttl=settings.retention.idempotency
        )
        ctx: ServerContext | None = None
        try:
            publisher = Publisher(
                store,
                load_or_create_key(settings.data_dir / CURSOR_KEY_FILE),
                retention=settings.retention.events,
            )
            verifier = TokenVerifier.from_files(settings.tokens.issuers, clock, settings.tokens.leeway)
            ctx = ServerContext(
                settings, store, publisher, clock, verifier, health_aio.HealthServicer(), demo_issuer
            )
            server = grpc.aio.server(interceptors=interceptors(settings, verifier), options=SERVER_OPTIONS)
            services: list[str] = []
            for plugin in plugins:
                services.extend(plugin(ctx, server))
            health_pb2_grpc.add_HealthServicer_to_server(ctx.health, server)
            health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
            reflection.enable_server_reflection([*services, health_name, reflection.SERVICE_NAME], server)
            for seed in demo_seeds:
                await seed(ctx)
        except BaseException:
            # A plugin or seed failed after others started their background work: stop it, and
            # close the store, before the error leaves (a multihost process keeps running).
            if ctx is not None:
                await ctx.lifecycle.stop(settings.timers.shutdown_grace.total_seconds(), ctx.background)
            await store.close()
            raise
        return cls(ctx, server, services)

    async def start(self) -> int:
        """Bind, start serving and return the bound port."""
        settings = self.ctx.settings
        if settings.uses_tls:
            self.port = self.server.add_secure_port(settings.listen, server_credentials(settings.tls))
            if settings.tls.mtls_listen is not None:
                self.mtls_port = self.server.add_secure_port(
                    settings.tls.mtls_listen, mtls_server_credentials(settings.tls)
                )
        else:
            self.port = self.server.add_insecure_port(settings.listen)
        await self.server.start()
        await self.ctx.health.set("", health_pb2.HealthCheckResponse.SERVING)
        for name in self.services:
            await self.ctx.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if settings.metrics_listen is not None:
            host, port = split_host_port(settings.metrics_listen)
            self._metrics_http, _ = start_http_server(port, addr=host)
        self._housekeeping = asyncio.create_task(self._housekeep(), name="ansim-housekeeping")
        return self.port

    @property
    def address(self) -> str:
        return join_host_port(split_host_port(self.ctx.settings.listen)[0], self.port)

    @property
    def mtls_address(self) -> str | None:
        listen = self.ctx.settings.tls.mtls_listen
        if listen is None or not self.mtls_port:
            return None
        return join_host_port(split_host_port(listen)[0], self.mtls_port)

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)
            try:
                now = self.ctx.clock.now()
                await self.ctx.store.purge_idempotency(now)
                await self.ctx.publisher.prune(now)
            except Exception:
                log.exception("housekeeping failed")

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        """Serve until :meth:`request_stop` (or a signal, see :func:`serve`), then stop gracefully."""
        await self._stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        """Stop in the order that loses no acknowledged work: health NOT_SERVING, event streams end,
        the server stops accepting and in-flight calls get the grace, then every background task and
        loop is stopped (bounded by the grace too), and only then does the store close."""
        if self._stopped.is_set():
            return
        self._stopping.set()
        grace = self.ctx.settings.timers.shutdown_grace.total_seconds()
        log.info("shutting down", extra={"grace_s": grace})
        await self.ctx.health.enter_graceful_shutdown()
        await self.ctx.publisher.close()
        await self.server.stop(grace)
        housekeeping = [self._housekeeping] if self._housekeeping is not None else []
        await self.ctx.lifecycle.stop(max(grace, 1.0), [*self.ctx.background, *housekeeping])
        await self.ctx.store.close()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
        self._stopped.set()
        log.info("stopped")


async def serve(center: CenterServer, on_listening: Any = None) -> None:
    """Start ``center``, settle the garbage collector (:mod:`reference_server.gc_tuning`), call
    ``on_listening(center)``, serve until SIGTERM / SIGINT, stop gracefully."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, center.request_stop)
    try:
        await center.start()
        settle_after_start()
        if on_listening is not None:
            on_listening(center)
        await center.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await center.stop()


def database_path(data_dir: Path) -> Path:
    return data_dir / DATABASE_FILE
