"""Federation of one center: the trust registry, the directory, peers, and the background work that
routes, relays, hands off, mirrors and recovers (spec §16.5, §16.6, §17).

It implements the :class:`~reference_server.domain.ports.EmergencyRouter` port: the emergency area
calls :meth:`Federation.route` when an emergency raised here becomes RAISED, and federation forwards
it to the responsible center, or leaves it here, or falls back within 5 s. Log lines of logger
``ansim.federation`` (JSON, no personal data) carry an ``event`` field that ``ansim demo`` shows on
its timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc.aio
from ansim.v1 import common_pb2, directory_pb2, emergency_pb2, federation_pb2, federation_pb2_grpc
from google.protobuf import json_format

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.context import ServerContext
from reference_server.domain.directory.geometry import area_geometry, intersects_region
from reference_server.domain.directory.resolver import serving_agencies
from reference_server.domain.federation.connections import (
    Identity,
    PeerChannels,
    directory_channel,
)
from reference_server.domain.federation.current import current_forwarded, forwarded_of
from reference_server.domain.federation.forwarder import Outcome, ResponseInvalid, run_schedule
from reference_server.domain.federation.handling import (
    ACTIVE_STATES,
    Handled,
    HandlingDesk,
    load_handled,
    queue_mirror,
)
from reference_server.domain.federation.home_handoff import HomeHandoff
from reference_server.domain.federation.mirror import MirrorInbox, center_of, send_pending
from reference_server.domain.federation.registry import TrustRegistry, usable_peer
from reference_server.domain.federation.route_cache import Route, RouteCache
from reference_server.domain.federation.router import DirectoryClient, Resolution, Router
from reference_server.domain.ports import RouteWriter
from reference_server.security.tokens import TokenIssuer
from reference_server.store.sqlite import SqliteTransaction

log = logging.getLogger("ansim.federation")

HANDOFF_GAP = timedelta(seconds=10)
HANDOFF_RETRY = timedelta(seconds=30)
RECOVERY_FIRST_S = 30.0
RECOVERY_MAX_S = 300.0
FULL_RELOAD = timedelta(hours=24)
PEER_CALL_TIMEOUT_S = 2.0


def load_static_entries(path: Path) -> list[directory_pb2.CenterEntry]:
    """CenterEntry objects (proto JSON) from a JSON list."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [json_format.ParseDict(item, directory_pb2.CenterEntry()) for item in data]


def check_response_path(request_via: Sequence[str], called: str, via: Sequence[str], emergency: str) -> None:
    """FED-011: the path must extend the request's via with the called center, and the emergency
    must belong to the last center of the path."""
    expected = [*request_via, called]
    if list(via[: len(expected)]) != expected or center_of(emergency) != via[-1]:
        raise ResponseInvalid(f"path {list(via)} / {emergency} does not extend {expected}")


class Federation:
    """See module docstring. Created by the federation plugin; ``start``/``stop`` with the server."""

    def __init__(self, ctx: ServerContext, *, recovery_first_s: float = RECOVERY_FIRST_S) -> None:
        self.ctx = ctx
        self.me = ctx.settings.center_name
        self.registry = TrustRegistry(self.me)
        self.identity = self._identity()
        self.channels = PeerChannels(self.identity) if self.identity is not None else None
        self.directory: DirectoryClient | None = None
        if self.identity is not None and ctx.settings.directory_endpoint and self.channels is not None:
            channel = directory_channel(
                self.identity, ctx.settings.directory_endpoint, ctx.settings.federation.directory_server_name
            )
            self.directory = DirectoryClient(channel, self.channels.tokens)
        self.router = Router(self.directory, ctx.clock)
        self.desk = HandlingDesk(ctx.store, self.registry, ctx.domain)
        self.desk.verify_evidence = self.verify_evidence
        self.routes = RouteCache(ctx.store)
        self.inbox = MirrorInbox(ctx.store, ctx.domain, self.routes)
        self.recovery_first_s = recovery_first_s
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._mirror_wakeup = asyncio.Event()
        self._handoffs: set[str] = set()
        self.home_handoff = HomeHandoff(self, gap=HANDOFF_GAP, retry=HANDOFF_RETRY)
        self._last_full_reload = 0.0

    def _identity(self) -> Identity | None:
        fed = self.ctx.settings.federation
        if not (fed.ca_cert and fed.client_cert and fed.client_key and fed.peer_token_key):
            return None
        issuer = TokenIssuer.create(fed.peer_token_issuer or self.me, fed.peer_token_key, self.ctx.clock)
        return Identity(self.me, fed.ca_cert, fed.client_cert, fed.client_key, issuer)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        static = self.ctx.settings.federation.static_peers
        if static is not None:
            self.registry.add_static(load_static_entries(static))
        if self.directory is not None:
            with contextlib.suppress(Exception):
                await self.directory.fetch_keys()
            await self.reload_registry(full=True)
        self._loops = [
            asyncio.create_task(self._registry_loop(), name="ansim-fed-registry"),
            asyncio.create_task(self._mirror_loop(), name="ansim-fed-mirror"),
            asyncio.create_task(self._recovery_loop(), name="ansim-fed-recovery"),
        ]

    async def stop(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.channels is not None:
            await self.channels.close()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload_registry(self, *, full: bool = False) -> None:
        """[DIR-021]: incremental by default; on failure the registry stays as it was."""
        if self.directory is None:
            return
        try:
            count = await self.registry.reload(self.directory.list_since, full=full)
            if full:
                self._last_full_reload = time.monotonic()
            if count or full:
                log.info("registry reloaded", extra={"event": "registry", "entries": count, "full": full})
        except Exception as error:
            log.warning("registry reload failed; keeping the last registry: %s", type(error).__name__)

    async def _registry_loop(self) -> None:
        interval = self.ctx.settings.federation.registry_reload.total_seconds()
        while True:
            await asyncio.sleep(interval)
            full = time.monotonic() - self._last_full_reload >= FULL_RELOAD.total_seconds()
            await self.reload_registry(full=full)

    async def refresh_unknown_caller(self) -> None:
        """FED-003: reload before refusing an unknown fingerprint, at most once a minute."""
        if self.directory is not None and time.monotonic() - getattr(self, "_unknown_reload", 0.0) > 60:
            self._unknown_reload = time.monotonic()
            await self.reload_registry()

    async def verify_evidence(
        self, evidence: directory_pb2.ResolveCenterResponse
    ) -> directory_pb2.ResolveCenterAnswer:
        if self.directory is None:
            raise RuntimeError("no directory keys to verify routing evidence")
        return await self.directory.verify(evidence)

    # -- calling peers ---------------------------------------------------------------------

    async def _stub(self, center: str, deadline_s: float) -> federation_pb2_grpc.FederationServiceStub:
        entry = self.registry.get(center)
        if entry is None or self.channels is None:
            raise ResponseInvalid(f"no registered entry or identity to reach {center}")
        try:
            channel = await self.channels.channel(entry, self.ctx.clock.now(), deadline_s)
        except Exception:
            async with self.ctx.store.transaction() as tx:
                await tx.append_audit(
                    self.me, "federation.peer_aborted", center, "FED-002 pin check", "aborted"
                )
            raise
        return federation_pb2_grpc.FederationServiceStub(channel)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        assert self.channels is not None
        return self.channels.tokens.metadata()

    async def call_peer(self, center: str, method: str, request: Any, deadline_s: float) -> Any:
        stub = await self._stub(center, deadline_s)
        rpc = getattr(stub, method)
        return await rpc(request, metadata=self._metadata(), timeout=deadline_s)

    # -- home side: routing ----------------------------------------------------------------

    def _usable_candidates(self, resolution: Resolution) -> list[str]:
        now = self.ctx.clock.now()
        return [c for c in resolution.candidates if c != self.me and usable_peer(self.registry.get(c), now)]

    async def route(self, emergency: emergency_pb2.Emergency) -> None:
        """EmergencyRouter port: start routing in the background [FED-012]."""
        started = time.monotonic()
        forwarded = forwarded_of(emergency, self.ctx.clock.now())
        self._spawn(self._route(forwarded, started), f"ansim-route-{emergency.name}")

    async def _route(self, forwarded: federation_pb2.ForwardedEmergency, started: float) -> None:
        # a decision taken here writes the route with the handling (one transaction); a forward
        # records the route first: the peer may call back about it before accepting
        resolution = await self.router.resolve(forwarded.location)
        if not resolution.candidates:
            await self._fallback(forwarded, resolution, "location unresolvable")
            return
        if resolution.candidates[0] == self.me:
            log.info(
                "handled here",
                extra={"event": "local", "incident": forwarded.incident_id, "source": resolution.source},
            )
            await self._handle_locally(forwarded)
            return
        async with self.ctx.store.transaction() as tx:
            await tx.execute(
                "INSERT OR IGNORE INTO fed_routes (home_emergency, incident_id, mode, status, emergency,"
                " update_time) VALUES (?, ?, ?, 'ROUTING', ?, ?)",
                (
                    forwarded.home_emergency,
                    forwarded.incident_id,
                    forwarded.mode,
                    forwarded.SerializeToString(),
                    to_rfc3339(tx.now),
                ),
            )
            self.routes.changed(tx, forwarded.home_emergency)
        candidates = self._usable_candidates(resolution)
        outcome = await self._forward(
            forwarded, candidates, resolution, federation_pb2.FORWARD_REASON_ROUTED, started
        )
        if outcome.result == "not_responsible":
            fresh = await self.router.resolve(forwarded.location, bypass_cache=True)
            again = self._usable_candidates(fresh)
            if fresh.candidates and fresh.candidates[0] != self.me and again and again[0] != outcome.center:
                outcome = await self._forward(
                    forwarded, again[:1], fresh, federation_pb2.FORWARD_REASON_ROUTED, started
                )
            else:
                outcome.result = "loop"
        if outcome.result == "loop":
            log.info(
                "handled here after refusal", extra={"event": "local", "incident": forwarded.incident_id}
            )
            await self._handle_locally(forwarded)
        elif outcome.result != "accepted":
            await self._fallback(forwarded, resolution, "no forward accepted within 5 s")

    async def _forward(
        self,
        forwarded: federation_pb2.ForwardedEmergency,
        candidates: Sequence[str],
        resolution: Resolution,
        reason: int,
        started: float,
        prior: Sequence[federation_pb2.ForwardedDispatch] = (),
    ) -> Outcome[federation_pb2.ForwardEmergencyResponse]:
        request_ids: dict[str, str] = {}

        async def send(center: str, deadline_s: float) -> federation_pb2.ForwardEmergencyResponse:
            request = federation_pb2.ForwardEmergencyRequest(
                request_id=request_ids.setdefault(center, str(uuid.uuid4())),
                emergency=forwarded,
                home_center=self.me,
                via=[self.me],
                reason=reason,  # type: ignore[arg-type]
                prior_dispatches=prior,
            )
            if resolution.evidence is not None:
                request.routing_evidence.CopyFrom(resolution.evidence)
            response: federation_pb2.ForwardEmergencyResponse = await self.call_peer(
                center, "ForwardEmergency", request, deadline_s
            )
            check_response_path([self.me], center, response.via, response.emergency)
            return response

        outcome = await run_schedule(candidates, send, started=started)
        for attempt in outcome.attempts:
            log.info(
                "forward attempt",
                extra={
                    "event": "forward_attempt",
                    "incident": forwarded.incident_id,
                    "peer": attempt.center,
                    "outcome": attempt.outcome,
                    "detail": attempt.detail,
                    "latency_ms": round(attempt.seconds * 1000, 1),
                },
            )
        if outcome.result == "accepted" and outcome.response is not None:
            await self._forward_accepted(forwarded, outcome.center, outcome.response, reason)
        return outcome

    async def _forward_accepted(
        self,
        forwarded: federation_pb2.ForwardedEmergency,
        center: str,
        response: federation_pb2.ForwardEmergencyResponse,
        reason: int,
    ) -> None:
        async with self.ctx.store.transaction() as tx:
            await tx.execute(
                "UPDATE fed_routes SET status = 'FORWARDED', handling_center = ?, handling_emergency = ?,"
                " emergency = ?, update_time = ? WHERE home_emergency = ?",
                (
                    center_of(response.emergency),
                    response.emergency,
                    forwarded.SerializeToString(),
                    to_rfc3339(tx.now),
                    forwarded.home_emergency,
                ),
            )
            self.routes.changed(tx, forwarded.home_emergency)
            await self.inbox.register(tx, forwarded.home_emergency, response.emergency)
            await tx.append_audit(
                self.me,
                "federation.forwarded",
                forwarded.home_emergency,
                f"incident {forwarded.incident_id} to {center} ({federation_pb2.ForwardReason.Name(reason)})",  # type: ignore[arg-type]
                "duplicate" if response.duplicate else "ok",
            )
        log.info(
            "forward accepted",
            extra={
                "event": "forwarded",
                "incident": forwarded.incident_id,
                "peer": center,
                "handling": response.emergency,
                "duplicate": response.duplicate,
                "reason": federation_pb2.ForwardReason.Name(reason),  # type: ignore[arg-type]
            },
        )
        if self.ctx.domain.forwarded is not None:
            entry = self.registry.get(center_of(response.emergency))
            await self.ctx.domain.forwarded.forward_accepted(
                forwarded.home_emergency, response.emergency, entry.display_name_ko if entry else ""
            )

    async def _handle_locally(self, forwarded: federation_pb2.ForwardedEmergency) -> None:
        """The emergency area handles it here (cameras, own dispatch), the route LOCAL in the same
        transaction [§17.3]."""
        write = self._route_writer(forwarded, "LOCAL")
        if self.ctx.domain.forwarded is None:
            async with self.ctx.store.transaction() as tx:
                await write(tx)
            return
        await self.ctx.domain.forwarded.handle_locally(forwarded.home_emergency, record_route=write)

    def _route_writer(
        self,
        forwarded: federation_pb2.ForwardedEmergency,
        status: str,
        next_recovery: str | None = None,
        fallback_why: str = "",
    ) -> RouteWriter:
        """The route's row with a decision taken here (created, or updated after a forward), and
        the fallback's audit entry [FED-014]."""

        async def write(tx: SqliteTransaction) -> None:
            await tx.execute(
                "INSERT INTO fed_routes (home_emergency, incident_id, mode, status, emergency,"
                " next_recovery, recovery_interval, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (home_emergency) DO UPDATE SET status = excluded.status,"
                " next_recovery = excluded.next_recovery, recovery_interval = excluded.recovery_interval,"
                " update_time = excluded.update_time",
                (
                    forwarded.home_emergency,
                    forwarded.incident_id,
                    forwarded.mode,
                    status,
                    forwarded.SerializeToString(),
                    next_recovery,
                    self.recovery_first_s,
                    to_rfc3339(tx.now),
                ),
            )
            self.routes.changed(tx, forwarded.home_emergency)
            if fallback_why:
                await tx.append_audit(
                    self.me, "federation.fallback", forwarded.home_emergency, fallback_why, "fallback"
                )

        return write

    async def mirror(self, tx: Any, emergency: str, event: federation_pb2.MirrorEvent) -> None:
        """EmergencyRouter port: queue a state change or dispatch of an emergency handled here for
        another home center [FED-023]; keeps fed_handled's state current."""
        handled = await load_handled(tx, emergency)
        if handled is None:
            return
        if event.WhichOneof("event") == "state_change":
            if not handled.active:
                return
            await tx.execute(
                "UPDATE fed_handled SET state = ?, update_time = ? WHERE name = ?",
                (event.state_change.state, to_rfc3339(tx.now), emergency),
            )
        await queue_mirror(tx, handled, event)
        tx.on_commit(self._mirror_wakeup.set)

    async def _set_route(self, home_emergency: str, status: str, **extra: Any) -> None:
        async with self.ctx.store.transaction() as tx:
            await tx.execute(
                "UPDATE fed_routes SET status = ?, next_recovery = ?, recovery_interval = ?, update_time = ?"
                " WHERE home_emergency = ?",
                (
                    status,
                    extra.get("next_recovery"),
                    extra.get("interval", self.recovery_first_s),
                    to_rfc3339(tx.now),
                    home_emergency,
                ),
            )
            self.routes.changed(tx, home_emergency)

    async def _fallback(
        self, forwarded: federation_pb2.ForwardedEmergency, resolution: Resolution, why: str
    ) -> None:
        """FED-014: handle it here, with the responsible center's contact; recover later [FED-015]."""
        next_try = self.ctx.clock.now() + timedelta(seconds=self.recovery_first_s)
        write = self._route_writer(forwarded, "FALLBACK", to_rfc3339(next_try), why)
        responsible = self.registry.get(resolution.candidates[0]) if resolution.candidates else None
        agencies: list[directory_pb2.ServingAgency] = []
        if resolution.answer is not None:
            agencies = list(resolution.answer.candidates[0].agencies)
        elif self.registry.me is not None:
            me = self.registry.me
            agencies = serving_agencies(me, forwarded.location.latitude, forwarded.location.longitude)
        log.warning(
            "fallback: handling here",
            extra={
                "event": "fallback",
                "incident": forwarded.incident_id,
                "responsible": responsible.name if responsible else "",
                "why": why,
            },
        )
        if self.ctx.domain.forwarded is None:
            async with self.ctx.store.transaction() as tx:
                await write(tx)
            return
        await self.ctx.domain.forwarded.handle_fallback(
            forwarded.home_emergency, responsible, agencies, record_route=write
        )

    async def recover_now(self, home_emergency: str) -> None:
        """Make the next recovery forward of a fallback emergency due at once (she left the home
        area [FED-019]); if it fails, the next follows after the first interval, then doubles
        [FED-015]."""
        async with self.ctx.store.transaction() as tx:
            await tx.execute(
                "UPDATE fed_routes SET next_recovery = ?, recovery_interval = ?, update_time = ?"
                " WHERE home_emergency = ? AND status = 'FALLBACK'",
                # the interval is doubled after a failed attempt: half the first one gives the first
                (to_rfc3339(tx.now), self.recovery_first_s / 2, to_rfc3339(tx.now), home_emergency),
            )
            self.routes.changed(tx, home_emergency)
        log.info("she left the home area: recovery now", extra={"event": "recovery_now"})

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await self._recover_due()

    async def _recover_due(self) -> None:
        now = self.ctx.clock.now()
        rows = await self.ctx.store.fetchall(
            "SELECT * FROM fed_routes WHERE status = 'FALLBACK' AND next_recovery <= ?", (to_rfc3339(now),)
        )
        for row in rows:
            sent = federation_pb2.ForwardedEmergency.FromString(row["emergency"])
            # her latest fix and state now: she may have moved into another area [FED-015]
            forwarded = await current_forwarded(self.ctx.domain.emergencies, sent, now)
            if forwarded is None:
                await self._set_route(sent.home_emergency, "ENDED")
                continue
            resolution = await self.router.resolve(forwarded.location)
            candidates = self._usable_candidates(resolution)[:1]
            outcome = (
                await run_schedule(candidates, self._fallback_sender(forwarded, resolution), budget_s=2.0)
                if candidates
                else None
            )
            if outcome is not None and outcome.result == "accepted" and outcome.response is not None:
                await self._forward_accepted(
                    forwarded, outcome.center, outcome.response, federation_pb2.FORWARD_REASON_FALLBACK
                )
                continue
            interval = min(float(row["recovery_interval"]) * 2, RECOVERY_MAX_S)
            async with self.ctx.store.transaction() as tx:
                # unless recover_now made it due again meanwhile (she left the home area)
                await tx.execute(
                    "UPDATE fed_routes SET next_recovery = ?, recovery_interval = ?, update_time = ?"
                    " WHERE home_emergency = ? AND status = 'FALLBACK' AND next_recovery = ?",
                    (
                        to_rfc3339(now + timedelta(seconds=interval)),
                        interval,
                        to_rfc3339(tx.now),
                        forwarded.home_emergency,
                        row["next_recovery"],
                    ),
                )
                self.routes.changed(tx, forwarded.home_emergency)

    def _fallback_sender(self, forwarded: federation_pb2.ForwardedEmergency, resolution: Resolution) -> Any:
        request_id = str(uuid.uuid4())

        async def send(center: str, deadline_s: float) -> federation_pb2.ForwardEmergencyResponse:
            handler = self.ctx.domain.forwarded
            prior = await handler.prior_dispatches(forwarded.home_emergency) if handler is not None else []
            request = federation_pb2.ForwardEmergencyRequest(
                request_id=request_id,
                emergency=forwarded,
                home_center=self.me,
                via=[self.me],
                reason=federation_pb2.FORWARD_REASON_FALLBACK,
                prior_dispatches=prior,
            )
            if resolution.evidence is not None:
                request.routing_evidence.CopyFrom(resolution.evidence)
            response: federation_pb2.ForwardEmergencyResponse = await self.call_peer(
                center, "ForwardEmergency", request, deadline_s
            )
            check_response_path([self.me], center, response.via, response.emergency)
            return response

        return send

    async def _route_of(self, emergency: str) -> Route | None:
        return await self.routes.get(emergency)

    async def route_mode(self, home_emergency: str) -> int | None:
        row = await self._route_of(home_emergency)
        return int(row["mode"]) if row else None

    async def relay_locations(self, emergency: str, locations: Sequence[common_pb2.Location]) -> None:
        """EmergencyRouter port: relay fixes to the handling center within 2 s [FED-016]; when this
        center handles the emergency itself, watch for her leaving its area [FED-019]."""
        route = await self._route_of(emergency)
        if route is not None and route["status"] in ("LOCAL", "FALLBACK") and locations:
            self._spawn(
                self.home_handoff.moved(emergency, list(locations), route), f"ansim-moved-{emergency}"
            )
            return
        if route is None or route["status"] != "FORWARDED" or not locations:
            return
        self._spawn(self._relay(emergency, list(locations)), f"ansim-relay-{emergency}")

    async def _relay(self, emergency: str, locations: list[common_pb2.Location], hops: int = 0) -> None:
        route = await self._route_of(emergency)
        if route is None or not route["handling_emergency"]:
            return
        request = federation_pb2.UpdateForwardedLocationRequest(
            request_id=str(uuid.uuid4()),
            emergency=route["handling_emergency"],
            mode=route["mode"],
            locations=locations[-20:],
        )
        try:
            await self.call_peer(
                route["handling_center"], "UpdateForwardedLocation", request, PEER_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            from ansim_sdk.errors import parse_rpc_error

            moved = parse_rpc_error(error).metadata.get("transferred_to", "")
            if moved and hops < 3:
                async with self.ctx.store.transaction() as tx:
                    await self.inbox.register(tx, emergency, moved)
                    await tx.execute(
                        "UPDATE fed_routes SET handling_center = ?, handling_emergency = ?"
                        " WHERE home_emergency = ?",
                        (center_of(moved), moved, emergency),
                    )
                    self.routes.changed(tx, emergency)
                await self._relay(emergency, locations, hops + 1)
        except Exception as error:
            log.info("relay failed: %s", type(error).__name__, extra={"event": "relay_failed"})

    async def cancelled(self, emergency: str, *, duress: bool, user_cancel_reason: int) -> None:
        """EmergencyRouter port: tell the handling center [FED-018]."""
        route = await self._route_of(emergency)
        if route is None or route["status"] != "FORWARDED":
            return
        request = federation_pb2.CancelForwardedEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=route["handling_emergency"],
            mode=route["mode"],
            reason=federation_pb2.CANCEL_REASON_DURESS
            if duress
            else federation_pb2.CANCEL_REASON_USER_CANCELLED,
            user_cancel_reason=0 if duress else user_cancel_reason,  # type: ignore[arg-type]
        )
        with contextlib.suppress(Exception):
            await self.call_peer(
                route["handling_center"], "CancelForwardedEmergency", request, PEER_CALL_TIMEOUT_S
            )

    # -- handling side: handoff ------------------------------------------------------------

    async def after_location(self, name: str) -> None:
        """FED-019: two consecutive fixes ≥ 10 s apart, each wholly outside my area → hand off."""
        me = self.registry.me
        async with self.ctx.store.transaction() as tx:
            handled = await load_handled(tx, name)
            if handled is None or not handled.active or me is None or not me.HasField("service_area"):
                return
            outside = not intersects_region(area_geometry(me.service_area), handled.emergency.location)
            if not outside:
                await self.desk.record_outside(tx, name, None)
                return
            if handled.outside_since is None:
                await self.desk.record_outside(tx, name, handled.current_fix_time)
                return
            due = handled.current_fix_time - handled.outside_since >= HANDOFF_GAP
        if due and name not in self._handoffs:
            self._handoffs.add(name)
            self._spawn(self._handoff(name), f"ansim-handoff-{name}")

    async def _handoff(self, name: str) -> None:
        try:
            while True:
                handled = await load_handled(self.ctx.store, name)
                if handled is None or not handled.active:
                    return
                if await self._try_handoff(handled):
                    return
                await asyncio.sleep(HANDOFF_RETRY.total_seconds())  # keep handling; retry [FED-021]
        finally:
            self._handoffs.discard(name)

    async def offer_handoff(
        self, candidates: Sequence[str], request: federation_pb2.HandoffEmergencyRequest, incident_id: str
    ) -> (
        tuple[Outcome[federation_pb2.HandoffEmergencyResponse], federation_pb2.HandoffEmergencyResponse]
        | None
    ):
        """Offer ``request`` to the first of ``candidates`` [FED-021], checking the response's path;
        the accepted outcome and its response, or None (logged) when it was not accepted."""

        async def send(center: str, deadline_s: float) -> federation_pb2.HandoffEmergencyResponse:
            response: federation_pb2.HandoffEmergencyResponse = await self.call_peer(
                center, "HandoffEmergency", request, deadline_s
            )
            check_response_path([self.me], center, response.via, response.emergency)
            return response

        outcome = await run_schedule(candidates[:1], send)
        if outcome.result != "accepted" or outcome.response is None:
            log.info("handoff not accepted", extra={"event": "handoff_failed", "incident": incident_id})
            return None
        return outcome, outcome.response

    async def _try_handoff(self, handled: Handled) -> bool:
        resolution = await self.router.resolve(handled.emergency.location, bypass_cache=True)
        candidates = self._usable_candidates(resolution)
        if not candidates:
            return False
        request = federation_pb2.HandoffEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=handled.emergency,
            home_center=handled.home_center,
            previous_emergency=handled.name,
            via=[self.me],
        )
        if self.ctx.domain.forwarded is not None:
            request.prior_dispatches.extend(await self.ctx.domain.forwarded.prior_dispatches(handled.name))
        if resolution.evidence is not None:
            request.routing_evidence.CopyFrom(resolution.evidence)

        accepted = await self.offer_handoff(candidates, request, handled.incident_id)
        if accepted is None:
            return False
        outcome, response = accepted
        async with self.ctx.store.transaction() as tx:
            current = await load_handled(tx, handled.name)
            if current is not None and current.state in ACTIVE_STATES:
                await self.desk.end(
                    tx, current, emergency_pb2.EMERGENCY_STATE_TRANSFERRED, response.emergency
                )
            await tx.append_audit(
                self.me,
                "federation.handed_off",
                handled.name,
                f"incident {handled.incident_id} to {outcome.center}",
                "ok",
            )
        self._mirror_wakeup.set()
        log.info(
            "handed off",
            extra={
                "event": "handoff",
                "incident": handled.incident_id,
                "peer": outcome.center,
                "handling": response.emergency,
                "latency_ms": round(sum(a.seconds for a in outcome.attempts) * 1000, 1),
            },
        )
        return True

    # -- handling side: mirroring ----------------------------------------------------------

    def mirror_soon(self) -> None:
        self._mirror_wakeup.set()

    async def _send_mirror(self, home_center: str, request: federation_pb2.MirrorStatusRequest) -> int:
        response: federation_pb2.MirrorStatusResponse = await self.call_peer(
            home_center, "MirrorStatus", request, PEER_CALL_TIMEOUT_S
        )
        return int(response.last_applied_sequence)

    async def _mirror_loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._mirror_wakeup.wait(), 1.0)
            self._mirror_wakeup.clear()
            if self.channels is None:
                continue
            try:
                applied = await send_pending(self.ctx.store, self._send_mirror, lambda: str(uuid.uuid4()))
                if applied:
                    log.info("mirrored", extra={"event": "mirrored", "events": applied})
            except Exception as error:
                log.info("mirror pass failed: %s", type(error).__name__)

    async def pending_since(self, moment: datetime) -> int:
        row = await self.ctx.store.fetchone(
            "SELECT COUNT(*) AS n FROM fed_mirror_out WHERE applied = 0 AND created <= ?",
            (to_rfc3339(moment),),
        )
        return int(row["n"]) if row else 0


def parse_time(text: str | None) -> datetime | None:
    return from_rfc3339(text) if text else None
