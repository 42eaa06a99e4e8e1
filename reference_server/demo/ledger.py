"""The ledger of the resilience scenario: where did each acknowledged SOS press end up?

A press is accounted for when, asked through the centers' own staff APIs:

- the home center (종로) holds exactly one emergency for the incident, the one the app was given;
- exactly one center handles it — the responsible center of the press location: it holds exactly
  one emergency for the incident (the home center's own, for a press at home), every other center
  none (FED-009: no duplicate after a retried or recovered forward);
- the handling emergency has an open dispatch to exactly the region's police 112;
- the home center's own dispatches for a press handled elsewhere are all SUPERSEDED (a fallback,
  FED-014, then the recovery forward, FED-015) or there are none (forwarded at once); whether a
  fallback happened is what the ledger reports, and the scenario says whether it had to.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from ansim.v1 import dispatch_pb2, dispatch_pb2_grpc, emergency_pb2, emergency_pb2_grpc

from reference_server.demo.console import tls_channel
from reference_server.demo.entries import CENTERS
from reference_server.demo.presses import HOME, Press

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

CLOSED = (
    dispatch_pb2.DISPATCH_STATE_SUPERSEDED,
    dispatch_pb2.DISPATCH_STATE_CLOSED,
    dispatch_pb2.DISPATCH_STATE_CLEARED,
)


class Unsettled(Exception):
    """The press is not (yet) where it must end up; the message says why."""


@dataclass(frozen=True)
class Entry:
    """Where one press ended up."""

    press: Press
    handling: str
    agencies: tuple[str, ...]
    fell_back: bool

    def describe(self) -> str:
        path = "fallback at home → forwarded" if self.fell_back else "direct"
        if self.press.region.center_id == HOME:
            path = "handled at home"
        return f"{self.press.region.label}: {path}, {self.handling}, {', '.join(self.agencies)}"


class Views:
    """The staff views of every center over one channel each (closed by :meth:`close`)."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, center_id: str) -> grpc.aio.Channel:
        if center_id not in self.channels:
            self.channels[center_id] = tls_channel(
                self.demo.cluster.pki.ca_cert,
                self.demo.centers[center_id].address,
                self.demo.cluster.certs_for(center_id).server_name,
            )
        return self.channels[center_id]

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)
        self.channels.clear()

    async def held_at(self, center_id: str, incident_id: str) -> list[emergency_pb2.Emergency]:
        reply = await emergency_pb2_grpc.EmergencyServiceStub(self.channel(center_id)).ListEmergencies(
            emergency_pb2.ListEmergenciesRequest(parent=f"centers/{center_id}", incident_id=incident_id),
            metadata=self.demo.operator(center_id),
            timeout=3,
        )
        return list(reply.emergencies)

    async def raised_at_home(self) -> int:
        """How many app SOS emergencies the home center holds (every page): N presses must add N."""
        stub = emergency_pb2_grpc.EmergencyServiceStub(self.channel(HOME))
        count, token = 0, ""
        while True:
            reply = await stub.ListEmergencies(
                emergency_pb2.ListEmergenciesRequest(
                    parent=f"centers/{HOME}",
                    page_size=1000,
                    page_token=token,
                    kinds=[emergency_pb2.EMERGENCY_KIND_APP_SOS],
                ),
                metadata=self.demo.operator(HOME),
                timeout=3,
            )
            count += sum(1 for e in reply.emergencies if e.name.startswith(f"centers/{HOME}/"))
            if not reply.next_page_token:
                return count
            token = reply.next_page_token

    async def emergency(self, center_id: str, name: str) -> emergency_pb2.Emergency:
        found: emergency_pb2.Emergency = await emergency_pb2_grpc.EmergencyServiceStub(
            self.channel(center_id)
        ).GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=name), metadata=self.demo.operator(center_id), timeout=3
        )
        return found

    async def dispatches(self, center_id: str, emergency: str) -> list[dispatch_pb2.Dispatch]:
        reply = await dispatch_pb2_grpc.DispatchServiceStub(self.channel(center_id)).ListDispatches(
            dispatch_pb2.ListDispatchesRequest(parent=f"centers/{center_id}", emergency=emergency),
            metadata=self.demo.operator(center_id),
            timeout=3,
        )
        return list(reply.dispatches)


async def account(views: Views, press: Press) -> Entry:
    """One look at every center; raises :class:`Unsettled` if the press is not accounted for."""
    region = press.region
    holders = {c.center_id: await views.held_at(c.center_id, press.incident_id) for c in CENTERS}
    if [e.name for e in holders[HOME]] != [press.name]:
        raise Unsettled(f"the home center holds {[e.name for e in holders[HOME]]}, not {press.name}")
    extra = {c: len(h) for c, h in holders.items() if c not in (HOME, region.center_id) and h}
    if extra:
        raise Unsettled(f"held elsewhere too: {extra}")
    home = await views.emergency(HOME, press.name)
    if home.handling_center != region.center:
        raise Unsettled(f"handled by {home.handling_center or 'nobody'}, not {region.center}")
    handled = holders[region.center_id]
    if len(handled) != 1:
        raise Unsettled(f"{region.center} holds {len(handled)} emergencies for the incident")
    own = await views.dispatches(region.center_id, handled[0].name)
    agencies = tuple(sorted(d.agency for d in own if d.state not in CLOSED))
    if agencies != (region.police,):
        raise Unsettled(f"open dispatches at {region.center} go to {agencies}, not {region.police}")
    fell_back = False
    if region.center_id != HOME:
        at_home = await views.dispatches(HOME, press.name)
        if any(d.state != dispatch_pb2.DISPATCH_STATE_SUPERSEDED for d in at_home):
            raise Unsettled("a dispatch of the home center is not SUPERSEDED")
        fell_back = bool(at_home)
    return Entry(press, handled[0].name, agencies, fell_back)


async def settle(demo: Demo, press: Press, timeout_s: float) -> Entry:
    """Wait until the press is accounted for; AssertionError with the last reason if it never is.
    A center that does not answer yet (it is still starting) counts as not settled."""
    deadline = time.monotonic() + timeout_s
    views = Views(demo)
    try:
        while True:
            try:
                return await account(views, press)
            except Unsettled as reason:
                last = str(reason)
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                last = f"a center did not answer: {error.code().name}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{press.region.label} ({press.name}): {last}")
            await asyncio.sleep(0.2)
    finally:
        await views.close()
