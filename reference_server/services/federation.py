"""FederationService (spec §17): served on the mutual-TLS listener to registered peer centers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc.aio
from ansim.v1 import directory_pb2, federation_pb2, federation_pb2_grpc

from ansim_sdk.errors import AnsimError
from ansim_sdk.validation import validate
from reference_server.context import ServerContext
from reference_server.domain.directory.geometry import geometry_area
from reference_server.domain.federation.engine import Federation
from reference_server.security.caller import Caller, current_caller
from reference_server.security.tls import fingerprint as tls_fingerprint
from reference_server.store.idempotency import idempotent
from reference_server.store.interface import Transaction

SERVICE = "ansim.v1.FederationService"
_PREFIX = f"/{SERVICE}/"
#: The peer a demo center trusts without a directory: the demo PKI's PEER_CENTER client certificate.
DEMO_PEER = "centers/demo-peer"
#: The demo center's own service area when it has no directory entry: 종로구 (Statistics Korea 11010).
DEMO_AREA_CODE = "11010"

Context = grpc.aio.ServicerContext[Any, Any]


class FederationServicer(federation_pb2_grpc.FederationServiceServicer):
    def __init__(self, ctx: ServerContext, federation: Federation) -> None:
        self.ctx = ctx
        self.fed = federation

    async def _peer(self) -> tuple[Caller, directory_pb2.CenterEntry]:
        """The registered center making this call [FED-001]; refusals are audited [FED-026]."""
        caller = current_caller()
        now = self.ctx.clock.now()
        try:
            return caller, self.fed.registry.identify(caller, now)
        except AnsimError as first:
            if caller.cert_fingerprint and self.fed.registry.by_fingerprint(caller.cert_fingerprint) is None:
                await self.fed.refresh_unknown_caller()
                try:
                    return caller, self.fed.registry.identify(caller, now)
                except AnsimError:
                    pass
            async with self.ctx.store.transaction() as tx:
                await tx.append_audit(
                    caller.subject,
                    "federation.refused",
                    caller.center or "-",
                    first.message,
                    "PEER_NOT_TRUSTED",
                )
            raise

    async def ForwardEmergency(
        self, request: federation_pb2.ForwardEmergencyRequest, context: Context
    ) -> federation_pb2.ForwardEmergencyResponse:
        validate(request)
        caller, peer = await self._peer()

        async def action(tx: Transaction) -> federation_pb2.ForwardEmergencyResponse:
            name, duplicate, via, accepted, state = await self.fed.desk.accept(
                tx,
                caller=peer.name,
                emergency=request.emergency,
                home_center=request.home_center,
                via=request.via,
                reason=request.reason,
                evidence=request.routing_evidence if request.HasField("routing_evidence") else None,
                prior_dispatches=request.prior_dispatches,
            )
            response = federation_pb2.ForwardEmergencyResponse(
                emergency=name,
                duplicate=duplicate,
                via=via,
                state=state,  # type: ignore[arg-type]
            )
            response.accept_time.CopyFrom(accepted)
            return response

        response = await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "ForwardEmergency",
            request.request_id,
            request,
            federation_pb2.ForwardEmergencyResponse,
            action,
        )
        self.fed.mirror_soon()
        return response

    async def HandoffEmergency(
        self, request: federation_pb2.HandoffEmergencyRequest, context: Context
    ) -> federation_pb2.HandoffEmergencyResponse:
        validate(request)
        caller, peer = await self._peer()

        async def action(tx: Transaction) -> federation_pb2.HandoffEmergencyResponse:
            name, duplicate, via, accepted, _ = await self.fed.desk.accept(
                tx,
                caller=peer.name,
                emergency=request.emergency,
                home_center=request.home_center,
                via=request.via,
                reason=federation_pb2.FORWARD_REASON_HANDOFF,
                evidence=request.routing_evidence if request.HasField("routing_evidence") else None,
                previous_emergency=request.previous_emergency,
                prior_dispatches=request.prior_dispatches,
            )
            response = federation_pb2.HandoffEmergencyResponse(emergency=name, duplicate=duplicate, via=via)
            response.accept_time.CopyFrom(accepted)
            return response

        response = await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "HandoffEmergency",
            request.request_id,
            request,
            federation_pb2.HandoffEmergencyResponse,
            action,
        )
        self.fed.mirror_soon()
        return response

    async def UpdateForwardedLocation(
        self, request: federation_pb2.UpdateForwardedLocationRequest, context: Context
    ) -> federation_pb2.UpdateForwardedLocationResponse:
        validate(request)
        caller, peer = await self._peer()

        async def action(tx: Transaction) -> federation_pb2.UpdateForwardedLocationResponse:
            _, current, _ = await self.fed.desk.update_location(tx, peer.name, request)
            return federation_pb2.UpdateForwardedLocationResponse(current_fix_time=current)

        response = await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "UpdateForwardedLocation",
            request.request_id,
            request,
            federation_pb2.UpdateForwardedLocationResponse,
            action,
        )
        await self.fed.after_location(request.emergency)
        return response

    async def CancelForwardedEmergency(
        self, request: federation_pb2.CancelForwardedEmergencyRequest, context: Context
    ) -> federation_pb2.CancelForwardedEmergencyResponse:
        validate(request)
        caller, peer = await self._peer()

        async def action(tx: Transaction) -> federation_pb2.CancelForwardedEmergencyResponse:
            state = await self.fed.desk.cancel(tx, peer.name, request)
            return federation_pb2.CancelForwardedEmergencyResponse(state=state)  # type: ignore[arg-type]

        response = await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "CancelForwardedEmergency",
            request.request_id,
            request,
            federation_pb2.CancelForwardedEmergencyResponse,
            action,
        )
        self.fed.mirror_soon()
        return response

    async def MirrorStatus(
        self, request: federation_pb2.MirrorStatusRequest, context: Context
    ) -> federation_pb2.MirrorStatusResponse:
        validate(request)
        caller, peer = await self._peer()

        async def action(tx: Transaction) -> federation_pb2.MirrorStatusResponse:
            row = await tx.fetchone(
                "SELECT mode FROM fed_routes WHERE home_emergency = ?", (request.home_emergency,)
            )
            mode = int(row["mode"]) if row else None
            last, _ = await self.fed.inbox.apply(tx, peer.name, request, mode)
            return federation_pb2.MirrorStatusResponse(last_applied_sequence=last)

        return await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "MirrorStatus",
            request.request_id,
            request,
            federation_pb2.MirrorStatusResponse,
            action,
        )


def demo_entries(ctx: ServerContext) -> list[directory_pb2.CenterEntry]:
    """Without a directory, a ``--demo`` center trusts the demo PKI's PEER_CENTER certificate as
    ``centers/demo-peer`` and takes 종로구 as its own service area, so that federation can be tested
    against a single demo center (conformance)."""
    from reference_server.geo.municipalities import load_municipalities

    pem = ctx.settings.data_dir / "pki" / "clients" / "peer_center.pem"
    if not pem.is_file():
        return []
    fingerprint = tls_fingerprint(pem.read_bytes())
    area = next(m.geometry for m in load_municipalities() if m.statistics_code.value == DEMO_AREA_CODE)
    me = directory_pb2.CenterEntry(
        name=ctx.settings.center_name,
        display_name_ko=ctx.settings.display_name[:100],
        display_name_en=ctx.settings.display_name[:100],
        service_area=geometry_area(area),
        state=directory_pb2.CENTER_STATE_ACTIVE,
        supported_profiles=["center-core", "federation"],
    )
    peer = directory_pb2.CenterEntry(
        name=DEMO_PEER,
        display_name_ko="데모 연계 센터",
        display_name_en="Demo peer center",
        state=directory_pb2.CENTER_STATE_ACTIVE,
        certificates=[directory_pb2.CertificatePin(sha256_fingerprint=fingerprint)],
        supported_profiles=["center-core", "federation"],
    )
    return [me, peer]


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    """Serve FederationService and install the routing port (centers only)."""
    if ctx.settings.role != "center":
        return []
    federation = Federation(ctx, recovery_first_s=ctx.settings.federation.recovery_first.total_seconds())
    no_directory = ctx.settings.directory_endpoint is None and ctx.settings.federation.static_peers is None
    if ctx.demo_issuer is not None and no_directory:
        federation.registry.add_static(demo_entries(ctx))
    ctx.domain.router = federation
    ctx.domain.extra["federation"] = federation
    federation_pb2_grpc.add_FederationServiceServicer_to_server(FederationServicer(ctx, federation), server)
    task = asyncio.get_running_loop().create_task(federation.start(), name="ansim-federation-start")
    ctx.domain.extra["federation_start"] = task

    async def stop() -> None:
        # A start still reloading the registry ends first, then the loops it started and the channels.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await federation.stop()

    ctx.lifecycle.on_stop("federation", stop, "close")
    return [SERVICE]
