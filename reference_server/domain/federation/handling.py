"""The handling side of federation: accepting forwards and handoffs, relayed fixes, cancels, and the
mirror events queued for the home center (spec §17.3, §17.5, §17.7).

Checks run in the order of §17.3: the request's constraints (the servicer), the caller and ``via``
[FED-001] [FED-004], a loop [FED-006], a duplicate by incident id [FED-009], responsibility
[FED-008]. An accepted emergency is stored durably, handed to the emergency area when it runs, and
its ``started`` mirror event queued, all in one transaction [FED-007] [FED-023].
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from ansim.v1 import camera_pb2, common_pb2, directory_pb2, emergency_pb2, error_pb2, federation_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from ansim_sdk.errors import AnsimError
from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.directory.geometry import area_geometry, intersects_region
from reference_server.domain.directory.resolver import serving_agencies
from reference_server.domain.directory.signing import AnswerNotVerified
from reference_server.domain.federation.registry import TrustRegistry
from reference_server.domain.ports import DomainPorts
from reference_server.store.interface import Row, Store, Transaction
from reference_server.store.sqlite import SqliteTransaction

ACTIVE_STATES = frozenset(
    {
        emergency_pb2.EMERGENCY_STATE_RAISED,
        emergency_pb2.EMERGENCY_STATE_ACKNOWLEDGED,
        emergency_pb2.EMERGENCY_STATE_DISPATCHED,
        emergency_pb2.EMERGENCY_STATE_ON_SCENE,
    }
)
MAX_VIA = 4
#: What the handling center does with an accepted forward: a fresh emergency, or a duplicate.
Accepted = tuple[str, bool, list[str], Timestamp, int]


def _error(reason: int, message: str, **metadata: str) -> AnsimError:
    return AnsimError(reason, message, metadata=metadata or None)


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass(frozen=True)
class Handled:
    """One emergency this center handles (or handled) for another home center."""

    name: str
    incident_id: str
    home_center: str
    home_emergency: str
    mode: int
    state: int
    transferred_to: str
    duress: bool
    emergency: federation_pb2.ForwardedEmergency
    current_fix_time: datetime
    outside_since: datetime | None
    via: list[str]
    accept_time: datetime

    @classmethod
    def of(cls, row: Row) -> Handled:
        return cls(
            name=row["name"],
            incident_id=row["incident_id"],
            home_center=row["home_center"],
            home_emergency=row["home_emergency"],
            mode=int(row["mode"]),
            state=int(row["state"]),
            transferred_to=row["transferred_to"],
            duress=bool(row["duress"]),
            emergency=federation_pb2.ForwardedEmergency.FromString(row["emergency"]),
            current_fix_time=from_rfc3339(row["current_fix_time"]),
            outside_since=from_rfc3339(row["outside_since"]) if row["outside_since"] else None,
            via=list(json.loads(row["via"])),
            accept_time=from_rfc3339(row["accept_time"]),
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


async def load_handled(db: Store | Transaction, name: str) -> Handled | None:
    row = await db.fetchone("SELECT * FROM fed_handled WHERE name = ?", (name,))
    return Handled.of(row) if row else None


async def queue_mirror(
    tx: Transaction, handled: Handled, event: federation_pb2.MirrorEvent
) -> federation_pb2.MirrorEvent:
    """Give ``event`` the next sequence of its handling emergency and queue it [FED-023]."""
    row = await tx.fetchone(
        "SELECT COALESCE(MAX(sequence), 0) AS last FROM fed_mirror_out WHERE handling_emergency = ?",
        (handled.name,),
    )
    event.sequence = int(row["last"] if row else 0) + 1
    if not event.HasField("event_time"):
        event.event_time.FromDatetime(tx.now)
    await tx.execute(
        "INSERT INTO fed_mirror_out (handling_emergency, sequence, home_center, home_emergency, mode, event,"
        " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            handled.name,
            event.sequence,
            handled.home_center,
            handled.home_emergency,
            handled.mode,
            event.SerializeToString(),
            to_rfc3339(tx.now),
        ),
    )
    return event


class HandlingDesk:
    """Requests from peers about emergencies this center handles."""

    def __init__(self, store: Store, registry: TrustRegistry, ports: DomainPorts) -> None:
        self._store = store
        self._registry = registry
        self._ports = ports
        #: Set by the engine: verifies routing evidence (raises AnswerNotVerified).
        self.verify_evidence: object = None

    @property
    def me(self) -> str:
        return self._registry.own_name

    def _my_area(self) -> directory_pb2.CenterEntry | None:
        return self._registry.me

    async def _responsible(
        self,
        location: common_pb2.Location,
        evidence: directory_pb2.ResolveCenterResponse | None,
        via: Sequence[str],
    ) -> bool:
        if len(via) >= MAX_VIA:
            return True
        entry = self._my_area()
        if (
            entry is not None
            and entry.HasField("service_area")
            and intersects_region(area_geometry(entry.service_area), location)
        ):
            return True
        if evidence is not None and evidence.answer and callable(self.verify_evidence):
            try:
                answer = await self.verify_evidence(evidence)
            except (AnswerNotVerified, OSError, RuntimeError):
                return False
            return any(c.center == self.me for c in answer.candidates)
        return False

    def check_via(self, caller: str, via: Sequence[str]) -> None:
        if not via or via[-1] != caller:
            raise _error(
                error_pb2.ERROR_REASON_PEER_NOT_TRUSTED, "the last via entry must be the calling center"
            )
        if self.me in via:
            raise _error(error_pb2.ERROR_REASON_FORWARDING_LOOP, f"{self.me} is already on the via path")

    async def _existing(self, tx: Transaction, incident_id: str) -> list[Handled]:
        rows = await tx.fetchall(
            "SELECT * FROM fed_handled WHERE incident_id = ? ORDER BY accept_time DESC", (incident_id,)
        )
        return [Handled.of(r) for r in rows]

    async def accept(
        self,
        tx: Transaction,
        *,
        caller: str,
        emergency: federation_pb2.ForwardedEmergency,
        home_center: str,
        via: Sequence[str],
        reason: int,
        evidence: directory_pb2.ResolveCenterResponse | None,
        previous_emergency: str = "",
        prior_dispatches: Sequence[federation_pb2.ForwardedDispatch] = (),
    ) -> Accepted:
        """Accept a forward (reason ROUTED/FALLBACK) or a handoff (HANDOFF); return (name, duplicate,
        via, accept_time, state)."""
        self.check_via(caller, via)
        full_via = [*via, self.me]
        handoff = reason == federation_pb2.FORWARD_REASON_HANDOFF
        for held in await self._existing(tx, emergency.incident_id):
            if held.home_center != home_center:
                raise _error(
                    error_pb2.ERROR_REASON_ALREADY_EXISTS,
                    f"incident {emergency.incident_id} is held here for another home center",
                )
            if handoff and not held.active:
                continue
            await self._take_newer(tx, held, emergency)
            await tx.append_audit(
                caller, "federation.duplicate", held.name, f"incident {emergency.incident_id}", "duplicate"
            )
            return held.name, True, held.via, _ts(held.accept_time), held.state
        if not await self._responsible(emergency.location, evidence, via):
            raise _error(
                error_pb2.ERROR_REASON_NOT_RESPONSIBLE, f"{self.me} is not responsible for this location"
            )
        name = f"{self.me}/emergencies/f-{uuid.uuid4().hex[:12]}"
        state = emergency_pb2.EMERGENCY_STATE_RAISED
        stored = federation_pb2.ForwardedEmergency()
        stored.CopyFrom(emergency)
        await tx.execute(
            "INSERT INTO fed_handled (name, incident_id, home_center, home_emergency, mode, state, reason,"
            " via, previous_emergency, duress, emergency, current_fix_time, accept_time, update_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                emergency.incident_id,
                home_center,
                emergency.home_emergency,
                emergency.mode,
                state,
                reason,
                json.dumps(full_via),
                previous_emergency,
                int(emergency.duress),
                stored.SerializeToString(),
                to_rfc3339(emergency.location.fix_time.ToDatetime(tzinfo=tx.now.tzinfo)),
                to_rfc3339(tx.now),
                to_rfc3339(tx.now),
            ),
        )
        handled = await load_handled(tx, name)
        assert handled is not None
        me = self._my_area()
        started = federation_pb2.MirrorEvent(
            started=federation_pb2.HandlingStarted(
                reason=reason,  # type: ignore[arg-type]
                previous_emergency=previous_emergency,
                center_display_name=me.display_name_ko if me is not None else "",
            )
        )
        await queue_mirror(tx, handled, started)
        agencies = (
            serving_agencies(me, emergency.location.latitude, emergency.location.longitude) if me else []
        )
        if self._ports.forwarded is not None:
            await self._ports.forwarded.handle_forwarded(
                cast(SqliteTransaction, tx), name, emergency, reason, agencies
            )
        action = "federation.accept_handoff" if handoff else "federation.accept_forward"
        purpose = f"incident {emergency.incident_id} from {caller}; prior dispatches {len(prior_dispatches)}"
        await tx.append_audit(caller, action, name, purpose, "ok")
        return name, False, full_via, _ts(tx.now), state

    async def _take_newer(
        self, tx: Transaction, held: Handled, emergency: federation_pb2.ForwardedEmergency
    ) -> None:
        """A duplicate may bring a later fix: keep it as current (LOC-004)."""
        new_time = emergency.location.fix_time.ToDatetime(tzinfo=tx.now.tzinfo)
        if new_time > held.current_fix_time:
            updated = federation_pb2.ForwardedEmergency()
            updated.CopyFrom(held.emergency)
            updated.location.CopyFrom(emergency.location)
            await tx.execute(
                "UPDATE fed_handled SET emergency = ?, current_fix_time = ?, update_time = ? WHERE name = ?",
                (updated.SerializeToString(), to_rfc3339(new_time), to_rfc3339(tx.now), held.name),
            )

    async def _addressed(self, tx: Transaction, name: str, caller: str, mode: int) -> Handled:
        handled = await load_handled(tx, name)
        if handled is None:
            raise _error(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"no forwarded emergency {name}")
        if handled.home_center != caller:
            raise _error(error_pb2.ERROR_REASON_NOT_OWNER, "only the emergency's home center may do this")
        if handled.mode != mode:
            raise _error(error_pb2.ERROR_REASON_MODE_MISMATCH, "the mode differs from the emergency's mode")
        return handled

    async def update_location(
        self, tx: Transaction, caller: str, request: federation_pb2.UpdateForwardedLocationRequest
    ) -> tuple[Handled, Timestamp, bool]:
        """Keep the latest fix as current [FED-016] [LOC-004]; return (emergency, current fix time,
        whether the current fix changed)."""
        handled = await self._addressed(tx, request.emergency, caller, request.mode)
        if not handled.active:
            raise _error(
                error_pb2.ERROR_REASON_EMERGENCY_NOT_ACTIVE,
                "the emergency is no longer active here",
                **({"transferred_to": handled.transferred_to} if handled.transferred_to else {}),
            )
        latest = max(request.locations, key=lambda loc: loc.fix_time.ToDatetime(tzinfo=tx.now.tzinfo))
        latest_time = latest.fix_time.ToDatetime(tzinfo=tx.now.tzinfo)
        changed = latest_time > handled.current_fix_time
        if changed:
            updated = federation_pb2.ForwardedEmergency()
            updated.CopyFrom(handled.emergency)
            if updated.location.ByteSize():
                updated.track.append(updated.location)
                del updated.track[:-60]
            updated.location.CopyFrom(latest)
            await tx.execute(
                "UPDATE fed_handled SET emergency = ?, current_fix_time = ?, update_time = ? WHERE name = ?",
                (updated.SerializeToString(), to_rfc3339(latest_time), to_rfc3339(tx.now), handled.name),
            )
            handled = await load_handled(tx, handled.name) or handled
            if self._ports.forwarded is not None:
                await self._ports.forwarded.forwarded_locations(
                    cast(SqliteTransaction, tx), handled.name, request.locations
                )
        await tx.append_audit(caller, "federation.location_relayed", handled.name, handled.incident_id, "ok")
        return handled, _ts(max(latest_time, handled.current_fix_time)), changed

    async def cancel(
        self, tx: Transaction, caller: str, request: federation_pb2.CancelForwardedEmergencyRequest
    ) -> int:
        """End, transfer or flag the emergency [FED-018]; return its state afterwards."""
        handled = await self._addressed(tx, request.emergency, caller, request.mode)
        if not handled.active:
            return handled.state
        reason = request.reason
        if reason == federation_pb2.CANCEL_REASON_DURESS:
            await tx.execute(
                "UPDATE fed_handled SET duress = 1, update_time = ? WHERE name = ?",
                (to_rfc3339(tx.now), handled.name),
            )
            if self._ports.forwarded is not None:
                await self._ports.forwarded.forwarded_duress(cast(SqliteTransaction, tx), handled.name)
            await tx.append_audit(caller, "federation.duress", handled.name, handled.incident_id, "ok")
            return handled.state
        if reason == federation_pb2.CANCEL_REASON_HANDLED_ELSEWHERE:
            await self.end(tx, handled, emergency_pb2.EMERGENCY_STATE_TRANSFERRED, request.handled_by)
        else:
            await self.end(
                tx, handled, emergency_pb2.EMERGENCY_STATE_CANCELLED, "", request.user_cancel_reason
            )
        await tx.append_audit(caller, "federation.cancel", handled.name, handled.incident_id, "ok")
        return (
            emergency_pb2.EMERGENCY_STATE_TRANSFERRED
            if reason == federation_pb2.CANCEL_REASON_HANDLED_ELSEWHERE
            else emergency_pb2.EMERGENCY_STATE_CANCELLED
        )

    async def end(
        self, tx: Transaction, handled: Handled, state: int, transferred_to: str, cancel_reason: int = 0
    ) -> None:
        """Mark the emergency ended (revoking its video grants) and mirror the state change; a
        CANCELLED one keeps the user's ``cancel_reason`` [FED-018] [FED-021]."""
        await tx.execute(
            "UPDATE fed_handled SET state = ?, transferred_to = ?, update_time = ? WHERE name = ?",
            (state, transferred_to, to_rfc3339(tx.now), handled.name),
        )
        if self._ports.video is not None:
            revocation = (
                camera_pb2.VIDEO_GRANT_REVOCATION_REASON_HANDOFF
                if state == emergency_pb2.EMERGENCY_STATE_TRANSFERRED
                else camera_pb2.VIDEO_GRANT_REVOCATION_REASON_EMERGENCY_ENDED
            )
            await self._ports.video.revoke_for_emergency(
                cast(SqliteTransaction, tx), handled.name, revocation
            )
        if self._ports.forwarded is not None:  # dispatches closed or SUPERSEDED, mirrored before the state
            await self._ports.forwarded.handling_ended(
                cast(SqliteTransaction, tx), handled.name, state, transferred_to, cancel_reason
            )
        change = federation_pb2.HandlingStateChange(state=state, transferred_to=transferred_to)  # type: ignore[arg-type]
        await queue_mirror(tx, handled, federation_pb2.MirrorEvent(state_change=change))

    async def record_outside(self, tx: Transaction, name: str, since: datetime | None) -> None:
        await tx.execute(
            "UPDATE fed_handled SET outside_since = ? WHERE name = ?",
            (to_rfc3339(since) if since else None, name),
        )
