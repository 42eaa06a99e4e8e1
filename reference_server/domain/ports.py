"""The ports through which one domain area of the center calls another.

Each area implements its port and installs it on ``ctx.domain`` when its plugin registers; callers
look it up there, so no area imports another area's internals. A port is ``None`` when the area is
not running in this center (e.g. a center without child safety), and callers must cope with that.
Calls that take ``tx`` run inside the caller's transaction, so a cross-area effect commits (or
rolls back) together with the caller's own writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ansim.v1 import common_pb2, emergency_pb2

from reference_server.store.sqlite import SqliteTransaction


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
    ) -> emergency_pb2.Emergency:
        """Raise an emergency on behalf of a system source (a tag button, a bell, a danger-zone
        escalation, an overdue safe trip). ``origin`` is the resource name of the source (ward,
        reader, safe trip); ``idempotency_key`` makes a repeated call return the first emergency."""
        ...

    async def get(self, name: str) -> emergency_pb2.Emergency | None:
        """The emergency as an operator sees it, or None."""
        ...

    async def acknowledged_agencies(self, emergency: str) -> frozenset[str]:
        """Agencies (``agencies/{agency}``) holding an acknowledged, not yet closed dispatch for it."""
        ...


@dataclass
class DomainPorts:
    """The ports installed by the running areas (see module docstring)."""

    cameras: CameraLookup | None = None
    video: VideoAccess | None = None
    emergencies: EmergencyIntake | None = None
    extra: dict[str, object] = field(default_factory=dict)
