"""The ports through which one domain area of the center calls another.

Each area implements its port and installs it on ``ctx.domain`` when its plugin registers; callers
look it up there, so no area imports another area's internals. A port is ``None`` when the area is
not running in this center (e.g. a center without child safety), and callers must cope with that.
Calls that take ``tx`` run inside the caller's transaction, so a cross-area effect commits (or
rolls back) together with the caller's own writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ansim.v1 import common_pb2, directory_pb2, emergency_pb2, federation_pb2

from reference_server.store.sqlite import SqliteTransaction

#: Federation's rows for a routing decision (its route, its audit entry), written by the emergency
#: area in the transaction that acts on the decision, so that deciding costs one transaction.
RouteWriter = Callable[[SqliteTransaction], Awaitable[None]]


@dataclass(frozen=True)
class NearbyCamera:
    """A camera found near a point: its resource name and great-circle distance in metres."""

    name: str
    distance_m: float


class CameraLookup(Protocol):
    """Implemented by the camera area: nearest cameras over the center's inventory."""

    def nearby(self, latitude: float, longitude: float, radius_m: float, limit: int) -> list[NearbyCamera]:
        """Cameras within ``radius_m`` of the point, nearest first (ties by name), at most ``limit``."""
        ...


class VideoAccess(Protocol):
    """Implemented by the video-access area."""

    async def revoke_for_emergency(self, tx: SqliteTransaction, emergency: str, reason: int) -> int:
        """Revoke every active grant of the emergency (``reason`` a VideoGrant revocation reason
        value); record each revocation; return how many were revoked."""
        ...


class EmergencyIntake(Protocol):
    """Implemented by the emergency area: raising and reading emergencies from other areas."""

    async def raise_from_system(
        self,
        *,
        kind: int,
        mode: int,
        location: common_pb2.Location,
        idempotency_key: str,
        origin: str,
        description: str,
        reporter: common_pb2.Subject | None = None,
        profile: emergency_pb2.ConsentedProfile | None = None,
        duress: bool = False,
    ) -> emergency_pb2.Emergency:
        """Raise an emergency on behalf of a system source (a tag button, a bell, a danger-zone
        escalation, an overdue safe trip). ``origin`` is the resource name of the source (ward,
        reader, safe trip); ``idempotency_key`` makes a repeated call return the first emergency.
        ``reporter`` and ``profile``: the person the source acts for and her consented profile, shown
        to staff (the person never sees the emergency herself); ``duress``: raised by a duress code,
        handled as after a duress cancel (``duress`` set, DURESS_SIGNALLED) [TRIP-013] [EMG-013].
        For a reader's emergency the reader's cameras are selected first [TAG-017]."""
        ...

    async def add_locations(
        self, emergency: str, locations: Sequence[common_pb2.Location], idempotency_key: str
    ) -> None:
        """Add fixes received by the calling area to an active emergency as if streamed (e.g. an
        escalated or duress safe trip's) [TRIP-013] [TRIP-018]; a repeated key adds nothing."""
        ...

    async def ensure_dispatched(self, name: str) -> bool:
        """Request the emergency's dispatch to its police 112 agency unless one was requested before
        (a notification reached POLICE_112) [GRD-007]; False when that is not possible here."""
        ...

    async def get(self, name: str) -> emergency_pb2.Emergency | None:
        """The emergency as an operator sees it, or None."""
        ...

    async def acknowledged_agencies(self, emergency: str) -> frozenset[str]:
        """Agencies (``agencies/{agency}``) holding an acknowledged, not yet closed dispatch for it."""
        ...


class EmergencyRouter(Protocol):
    """Implemented by federation (spec §17): the emergency area calls it, when present, so that an
    emergency is handled by the center responsible for where it happens."""

    async def route(self, emergency: emergency_pb2.Emergency) -> None:
        """The emergency raised here became RAISED: resolve its location and forward it to the
        responsible center, or handle it here (returns at once; routing runs in the background and
        ends in a forward, local handling or a fallback within 5 s) [FED-012] [FED-013] [FED-014]."""
        ...

    async def relay_locations(self, emergency: str, locations: Sequence[common_pb2.Location]) -> None:
        """New fixes of an emergency raised here: relay them to its handling center [FED-016], or, when
        this center handles it itself, hand it off once she has left its area [FED-019]."""
        ...

    async def cancelled(self, emergency: str, *, duress: bool, user_cancel_reason: int) -> None:
        """The user cancelled an emergency raised here (``duress`` with her duress code) [FED-018]."""
        ...

    async def mirror(self, tx: SqliteTransaction, emergency: str, event: federation_pb2.MirrorEvent) -> None:
        """Queue ``event`` (a state change or a dispatch of this center) for the home center when
        ``emergency`` is one this center handles for another home center; else do nothing [FED-023]."""
        ...


class ForwardedEmergencyHandler(Protocol):
    """Implemented by the emergency area: handle an emergency that federation accepted from a peer,
    and show the handling center's mirrored progress on the home emergency."""

    async def handle_forwarded(
        self,
        tx: SqliteTransaction,
        name: str,
        forwarded: federation_pb2.ForwardedEmergency,
        reason: int,
        agencies: Sequence[directory_pb2.ServingAgency],
    ) -> None:
        """Handle ``forwarded`` as if raised here under the resource name ``name`` (cameras, dispatch
        to ``agencies``, in its mode) [FED-007]; runs in federation's accepting transaction."""
        ...

    async def handle_fallback(
        self,
        emergency: str,
        responsible: directory_pb2.CenterEntry | None,
        agencies: Sequence[directory_pb2.ServingAgency],
        *,
        record_route: RouteWriter | None = None,
    ) -> None:
        """No forward was accepted within 5 s: handle the emergency raised here yourself, showing
        the responsible center's operations contact [FED-014]; ``record_route`` runs first in the
        same transaction."""
        ...

    async def apply_mirror(
        self,
        tx: SqliteTransaction,
        home_emergency: str,
        handling_emergency: str,
        event: federation_pb2.MirrorEvent,
    ) -> None:
        """Apply one mirrored event to the home emergency and its watch stream, in the transaction
        that records it as applied, so that no event is acknowledged unapplied [FED-024]."""
        ...

    async def handle_locally(self, emergency: str, *, record_route: RouteWriter | None = None) -> None:
        """Routing decided that this center is responsible for the emergency raised here (the top
        candidate is itself, or a peer refused with a loop): select cameras and dispatch now [§17.3];
        ``record_route`` runs first in the same transaction."""
        ...

    async def forward_accepted(self, emergency: str, handling_emergency: str, display_name: str) -> None:
        """A forward of the emergency raised here was accepted: show the handling center to the app
        and supersede any dispatch of a fallback [EMG-025] [FED-015]."""
        ...

    async def prior_dispatches(self, emergency: str) -> list[federation_pb2.ForwardedDispatch]:
        """This center's dispatches of the emergency, for a FALLBACK forward [FED-015]."""
        ...

    async def forwarded_locations(
        self, tx: SqliteTransaction, name: str, locations: Sequence[common_pb2.Location]
    ) -> None:
        """Fixes relayed by the home center for an emergency handled here [FED-016]."""
        ...

    async def forwarded_duress(self, tx: SqliteTransaction, name: str) -> None:
        """The home center relayed a duress cancel: keep handling, flag it [FED-018]."""
        ...

    async def handling_ended(
        self, tx: SqliteTransaction, name: str, state: int, transferred_to: str, cancel_reason: int = 0
    ) -> None:
        """Federation ended an emergency handled here (cancelled at home with the user's
        ``cancel_reason``, or TRANSFERRED after a handoff): close or supersede its dispatches and end
        it, without mirroring again [FED-018] [FED-021]."""
        ...


@dataclass
class DomainPorts:
    """The ports installed by the running areas (see module docstring)."""

    cameras: CameraLookup | None = None
    video: VideoAccess | None = None
    emergencies: EmergencyIntake | None = None
    router: EmergencyRouter | None = None
    forwarded: ForwardedEmergencyHandler | None = None
    extra: dict[str, object] = field(default_factory=dict)
