"""Video grants (spec §12.3, §12.4): conditions, tokens, revocation, expiry; the ``VideoAccess`` port.

CreateVideoGrant decides first (pure reads: the emergency through ``ctx.domain.emergencies``, the
cameras through the store and the index), then writes in ONE transaction: the idempotency outcome,
the grant or the refusal, its access record [VID-001] and its internal audit record [AUD-001].
A refusal is committed too (the access record and the error outcome, so that a retry gets the same
error without a second record [VID-025]) and raised after the commit.

A housekeeping loop (``sweep``, every second) writes EXPIRED records [VID-001, VID-011] and revokes
grants whose emergency ended or was transferred, or whose agency no longer holds an acknowledged
dispatch [VID-013] — also when the emergency area does not call ``revoke_for_emergency`` itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ansim.v1 import camera_pb2, common_pb2, emergency_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock, to_rfc3339
from reference_server.domain.cameras import repository
from reference_server.domain.cameras.convert import searchable
from reference_server.domain.cameras.inventory import CameraInventory, haversine_m
from reference_server.domain.ports import EmergencyIntake
from reference_server.domain.video import access_records, tokens
from reference_server.domain.video.access_records import RecordInput
from reference_server.security.caller import Caller
from reference_server.store.idempotency import request_hash
from reference_server.store.sqlite import SqliteStore, SqliteTransaction

C = camera_pb2
E = error_pb2
GRANT_RADIUS_M = 1000.0
TOKEN_MIN_LEFT = timedelta(seconds=60)
CREATE_METHOD = "/ansim.v1.CameraService/CreateVideoGrant"
REVOKE_METHOD = "/ansim.v1.CameraService/RevokeVideoGrant"
ENDED_STATES = frozenset(
    {
        emergency_pb2.EMERGENCY_STATE_RESOLVED,
        emergency_pb2.EMERGENCY_STATE_CANCELLED,
        emergency_pb2.EMERGENCY_STATE_TRANSFERRED,
    }
)
OFFICER_ROLES = frozenset({common_pb2.ROLE_POLICE_OFFICER, common_pb2.ROLE_FIRE_OFFICER})


@dataclass(frozen=True)
class Denial:
    reason: int
    message: str
    cameras: Sequence[str] = ()


@dataclass(frozen=True)
class Approval:
    emergency: emergency_pb2.Emergency
    #: (camera name, camera id, camera_count) of each granted camera, in request / distance order.
    cameras: list[tuple[str, str, int]] = field(default_factory=list)


def _mode_name(mode: int) -> str:
    return common_pb2.Mode.Name(mode).removeprefix("MODE_")  # type: ignore[arg-type]


class VideoGrants:
    """Grants of one center (implements ``VideoAccess``)."""

    def __init__(
        self,
        *,
        center: str,
        store: SqliteStore,
        clock: Clock,
        inventory: CameraInventory,
        emergencies: Callable[[], EmergencyIntake | None],
        signing_key: tokens.SigningKey,
        gateway_origin: str,
    ) -> None:
        self.center = center
        self.store = store
        self.clock = clock
        self.inventory = inventory
        self._emergencies = emergencies
        self.key = signing_key
        self.origin = gateway_origin.rstrip("/")

    # --- deciding ------------------------------------------------------------------------------

    async def _emergency(self, name: str) -> emergency_pb2.Emergency | None:
        port = self._emergencies()
        if port is None or not name.startswith(f"{self.center}/emergencies/"):
            return None
        return await port.get(name)

    async def _acknowledged(self, emergency: str) -> frozenset[str]:
        port = self._emergencies()
        return frozenset() if port is None else await port.acknowledged_agencies(emergency)

    async def decide(self, request: C.CreateVideoGrantRequest, caller: Caller) -> Denial | Approval:
        """Conditions 3–9 of spec §12.3 in order; the first failing one decides [VID-017]."""
        asked = request.video_grant
        named = list(asked.cameras)
        if asked.agency != caller.agency:
            return Denial(
                E.ERROR_REASON_NOT_OWNER, "video_grant.agency is not the agency of your token", named
            )
        emergency = await self._emergency(asked.emergency) if request.parent == self.center else None
        if emergency is None:
            return Denial(
                E.ERROR_REASON_RESOURCE_NOT_FOUND,
                f"no emergency {asked.emergency} at {request.parent}",
                named,
            )
        if emergency.state in ENDED_STATES:
            return Denial(E.ERROR_REASON_EMERGENCY_NOT_ACTIVE, "the emergency is no longer active", named)
        if asked.mode != emergency.mode:
            return Denial(
                E.ERROR_REASON_MODE_MISMATCH, "video_grant.mode differs from the emergency's mode", named
            )
        if caller.agency not in await self._acknowledged(asked.emergency):
            return Denial(
                E.ERROR_REASON_DISPATCH_NOT_ACKNOWLEDGED,
                "your agency holds no acknowledged dispatch for this emergency",
                named,
            )
        has_origin = emergency.HasField("last_location")
        lat, lon = emergency.last_location.latitude, emergency.last_location.longitude
        if named:
            return await self._check_named(named, emergency, lat, lon, has_origin)
        if not has_origin:
            return Denial(E.ERROR_REASON_CAMERA_NOT_NEAR_EMERGENCY, "the emergency has no location yet")
        near = self.inventory.search(
            lat,
            lon,
            min(request.nearby.radius_m, GRANT_RADIUS_M),
            request.nearby.limit,
            list(request.nearby.purposes),
        )
        if not near:
            return Denial(E.ERROR_REASON_CAMERA_NOT_NEAR_EMERGENCY, "no camera qualifies near the emergency")
        rows = await self._rows_by_ids([cid for _, cid, _ in near])
        chosen = []
        for _, cid, _ in near:
            camera = repository.camera_from_row(self.center, rows[cid])
            chosen.append((camera.name, cid, camera.camera_count))
        return Approval(emergency, chosen)

    async def _rows_by_ids(self, ids: Sequence[str]) -> dict[str, dict[str, object]]:
        if not ids:
            return {}
        rows = await self.store.fetchall(repository.fetch_by_ids_sql(len(ids)), tuple(ids))
        return {str(r["camera_id"]): r for r in rows}

    async def _check_named(
        self, named: list[str], emergency: emergency_pb2.Emergency, lat: float, lon: float, has_origin: bool
    ) -> Denial | Approval:
        prefix = f"{self.center}/cameras/"
        ids = [n.removeprefix(prefix) if n.startswith(prefix) else "" for n in named]
        rows = await self._rows_by_ids([i for i in ids if i])
        for name, cid in zip(named, ids, strict=True):
            if cid not in rows:
                return Denial(E.ERROR_REASON_RESOURCE_NOT_FOUND, f"no camera {name} at this center", named)
        chosen = []
        for name, cid in zip(named, ids, strict=True):
            camera = repository.camera_from_row(self.center, rows[cid])
            near = (
                has_origin
                and searchable(camera)
                and haversine_m(lat, lon, camera.location.latitude, camera.location.longitude)
                <= GRANT_RADIUS_M
            )
            if not near:
                return Denial(
                    E.ERROR_REASON_CAMERA_NOT_NEAR_EMERGENCY,
                    f"{name} is not a published camera within {GRANT_RADIUS_M:.0f} m of the emergency",
                    named,
                )
            chosen.append((name, cid, camera.camera_count))
        return Approval(emergency, chosen)

    # --- creating ------------------------------------------------------------------------------

    async def create(self, request: C.CreateVideoGrantRequest, caller: Caller) -> C.VideoGrant:
        digest = request_hash(request)
        decision = await self.decide(request, caller)
        refusal: AnsimError | None = None
        async with self.store.transaction() as tx:
            stored = await tx.idempotency_lookup(caller.key, CREATE_METHOD, request.request_id, digest)
            if stored is not None:
                return _replay(stored)
            asked = request.video_grant
            if isinstance(decision, Denial):
                await access_records.append(
                    tx,
                    self.center,
                    RecordInput(
                        outcome=C.ACCESS_OUTCOME_DENIED,
                        emergency=asked.emergency,
                        agency=asked.agency,
                        subject=caller.to_subject(),
                        cameras=decision.cameras,
                        purpose=asked.purpose,
                        mode=asked.mode,
                        denial_reason=decision.reason,
                        request_id=request.request_id,
                    ),
                )
                reason = E.ErrorReason.Name(decision.reason).removeprefix("ERROR_REASON_")  # type: ignore[arg-type]
                await tx.append_audit(
                    caller.subject, "video.deny", asked.emergency, asked.purpose, f"DENIED {reason}"
                )
                outcome = json.dumps({"reason": decision.reason, "message": decision.message}).encode()
                await tx.idempotency_record(
                    caller.key, CREATE_METHOD, request.request_id, digest, b"E" + outcome
                )
                refusal = AnsimError(decision.reason, decision.message)
            else:
                grant = self._new_grant(request, caller, decision, tx.now)
                await self._insert(tx, grant)
                await access_records.append(
                    tx,
                    self.center,
                    RecordInput(
                        outcome=C.ACCESS_OUTCOME_GRANTED,
                        emergency=grant.emergency,
                        agency=grant.agency,
                        subject=grant.officer,
                        cameras=list(grant.cameras),
                        purpose=grant.purpose,
                        mode=grant.mode,
                        video_grant=grant.name,
                        not_before=grant.create_time.ToDatetime(UTC),
                        not_after=grant.not_after.ToDatetime(UTC),
                        request_id=request.request_id,
                    ),
                )
                await tx.append_audit(caller.subject, "video.grant", grant.name, grant.purpose, "GRANTED")
                await tx.idempotency_record(
                    caller.key, CREATE_METHOD, request.request_id, digest, b"G" + grant.SerializeToString()
                )
        if refusal is not None:
            raise refusal
        return grant

    def _new_grant(
        self, request: C.CreateVideoGrantRequest, caller: Caller, approval: Approval, now: datetime
    ) -> C.VideoGrant:
        asked = request.video_grant
        grant = C.VideoGrant(
            name=f"{self.center}/videoGrants/vg-{uuid.uuid4().hex[:16]}",
            emergency=asked.emergency,
            agency=asked.agency,
            officer=caller.to_subject(),
            mode=asked.mode,
            purpose=asked.purpose,
            cameras=[name for name, _, _ in approval.cameras],
            requested_duration=asked.requested_duration,
            state=C.VIDEO_GRANT_STATE_ACTIVE,
        )
        grant.create_time.FromDatetime(now)
        grant.update_time.FromDatetime(now)
        grant.not_after.FromDatetime(now + asked.requested_duration.ToTimedelta())
        for name, cid, count in approval.cameras:
            for channel in range(1, count + 1):
                grant.streams.add(camera=name, channel=channel, uri=self._uri(grant.mode, cid, channel))
        self._issue_tokens(grant, now)
        return grant

    def _uri(self, mode: int, camera_id: str, channel: int) -> str:
        kind = "live" if mode == common_pb2.MODE_LIVE else "test"  # [VID-007]
        return f"{self.origin}/{kind}/{camera_id}/{channel}"

    def _issue_tokens(self, grant: C.VideoGrant, now: datetime) -> None:
        not_after = grant.not_after.ToDatetime(UTC)
        for stream in grant.streams:
            claims = tokens.stream_claims(
                center=self.center,
                audience=self.origin,
                officer=grant.officer.id,
                agency=grant.agency,
                grant=grant.name,
                camera=stream.camera,
                channel=stream.channel,
                emergency=grant.emergency,
                mode=_mode_name(grant.mode),
                issued=now,
                not_after=not_after,
            )
            stream.token = tokens.sign(self.key, claims)
            stream.token_expire_time.FromSeconds(int(claims["exp"]))  # type: ignore[call-overload]

    async def _insert(self, tx: SqliteTransaction, grant: C.VideoGrant) -> None:
        await tx.execute(
            "INSERT INTO video_grants (name, emergency, agency, officer, state, not_after, end_time, data)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                grant.name,
                grant.emergency,
                grant.agency,
                grant.officer.id,
                grant.state,
                to_rfc3339(grant.not_after.ToDatetime(UTC)),
                grant.SerializeToString(),
            ),
        )

    async def _save(self, tx: SqliteTransaction, grant: C.VideoGrant) -> None:
        end = to_rfc3339(grant.end_time.ToDatetime(UTC)) if grant.HasField("end_time") else None
        await tx.execute(
            "UPDATE video_grants SET state = ?, end_time = ?, data = ? WHERE name = ?",
            (grant.state, end, grant.SerializeToString(), grant.name),
        )

    # --- reading -------------------------------------------------------------------------------

    async def _load(self, name: str, tx: SqliteTransaction | None = None) -> C.VideoGrant | None:
        sql, params = "SELECT data FROM video_grants WHERE name = ?", (name,)
        row = await (tx.fetchone(sql, params) if tx is not None else self.store.fetchone(sql, params))
        return None if row is None else C.VideoGrant.FromString(bytes(row["data"]))

    def _check_access(self, grant: C.VideoGrant | None, name: str, caller: Caller) -> C.VideoGrant:
        if grant is None or not name.startswith(f"{self.center}/videoGrants/"):
            raise AnsimError(E.ERROR_REASON_RESOURCE_NOT_FOUND, f"no video grant {name}")
        if caller.role in OFFICER_ROLES and caller.agency != grant.agency:
            raise AnsimError(E.ERROR_REASON_NOT_OWNER, "the grant belongs to another agency")
        if caller.role == common_pb2.ROLE_CENTER_OPERATOR and caller.center not in ("", self.center):
            raise AnsimError(E.ERROR_REASON_NOT_OWNER, "you operate another center")
        return grant

    @staticmethod
    def view(grant: C.VideoGrant, caller: Caller | None) -> C.VideoGrant:
        """The grant as ``caller`` may see it: uri/token only for its own officer while ACTIVE [VID-012]."""
        own = (
            caller is not None
            and caller.role in OFFICER_ROLES
            and caller.subject == grant.officer.id
            and grant.state == C.VIDEO_GRANT_STATE_ACTIVE
        )
        if own:
            return grant
        shown = C.VideoGrant()
        shown.CopyFrom(grant)
        for stream in shown.streams:
            stream.uri = ""
            stream.token = ""
            stream.ClearField("token_expire_time")
        return shown

    async def get(self, name: str, caller: Caller) -> C.VideoGrant:
        grant = self._check_access(await self._load(name), name, caller)
        now = self.clock.now()
        if grant.state == C.VIDEO_GRANT_STATE_ACTIVE and now >= grant.not_after.ToDatetime(UTC):
            await self.expire_due()
            grant = self._check_access(await self._load(name), name, caller)
        elif (
            grant.state == C.VIDEO_GRANT_STATE_ACTIVE
            and caller.subject == grant.officer.id
            and self._stale(grant, now)
        ):
            async with self.store.transaction() as tx:
                current = await self._load(name, tx)
                if (
                    current is not None
                    and current.state == C.VIDEO_GRANT_STATE_ACTIVE
                    and self._stale(current, tx.now)
                ):
                    self._issue_tokens(current, tx.now)
                    current.update_time.FromDatetime(tx.now)
                    await self._save(tx, current)
                grant = current or grant
        return self.view(grant, caller)

    @staticmethod
    def _stale(grant: C.VideoGrant, now: datetime) -> bool:
        """Some token has less than 60 s left and ends before the grant does [VID-012]."""
        not_after = grant.not_after.ToDatetime(UTC)
        for stream in grant.streams:
            expires = stream.token_expire_time.ToDatetime(UTC)
            if expires < not_after and expires - now < TOKEN_MIN_LEFT:
                return True
        return False

    # --- ending --------------------------------------------------------------------------------

    async def _end(
        self,
        tx: SqliteTransaction,
        grant: C.VideoGrant,
        *,
        state: int,
        reason: int,
        end: datetime,
        actor: common_pb2.Subject | None = None,
        note: str = "",
        request_id: str = "",
    ) -> None:
        grant.state = state  # type: ignore[assignment]
        grant.revocation_reason = reason  # type: ignore[assignment]
        grant.revocation_note = note
        grant.end_time.FromDatetime(end)
        grant.update_time.FromDatetime(tx.now)
        for stream in grant.streams:
            stream.token = ""
            stream.ClearField("token_expire_time")
        await self._save(tx, grant)
        outcome = (
            C.ACCESS_OUTCOME_EXPIRED if state == C.VIDEO_GRANT_STATE_EXPIRED else C.ACCESS_OUTCOME_REVOKED
        )
        await access_records.append(
            tx,
            self.center,
            RecordInput(
                outcome=outcome,
                emergency=grant.emergency,
                agency=grant.agency,
                subject=grant.officer,
                actor=actor,
                cameras=list(grant.cameras),
                purpose=note or grant.purpose,
                mode=grant.mode,
                video_grant=grant.name,
                revocation_reason=reason,
                request_id=request_id,
            ),
        )
        reason_name = C.VideoGrantRevocationReason.Name(reason).removeprefix("VIDEO_GRANT_REVOCATION_REASON_")  # type: ignore[arg-type]
        action = "video.expire" if state == C.VIDEO_GRANT_STATE_EXPIRED else "video.revoke"
        await tx.append_audit(
            actor.id if actor else "system", action, grant.name, note or grant.purpose, reason_name
        )

    async def revoke(self, request: C.RevokeVideoGrantRequest, caller: Caller) -> C.VideoGrant:
        """RevokeVideoGrant: OPERATOR for operators, RELEASED for officers of the grant's agency [VID-015]."""
        from reference_server.store.idempotency import idempotent

        async def action(tx: SqliteTransaction) -> C.VideoGrant:
            grant = self._check_access(await self._load(request.name, tx), request.name, caller)
            now = tx.now
            if grant.state != C.VIDEO_GRANT_STATE_ACTIVE or now >= grant.not_after.ToDatetime(UTC):
                raise AnsimError(E.ERROR_REASON_GRANT_NOT_ACTIVE, "the grant has already ended")  # [VID-014]
            reason = (
                C.VIDEO_GRANT_REVOCATION_REASON_OPERATOR
                if caller.role == common_pb2.ROLE_CENTER_OPERATOR
                else C.VIDEO_GRANT_REVOCATION_REASON_RELEASED
            )
            await self._end(
                tx,
                grant,
                state=C.VIDEO_GRANT_STATE_REVOKED,
                reason=reason,
                end=now,
                actor=caller.to_subject(),
                note=request.note,
                request_id=request.request_id,
            )
            return self.view(grant, caller)

        return await idempotent(
            self.store,
            caller.key,
            REVOKE_METHOD,
            request.request_id,
            request,
            C.VideoGrant,
            action,  # type: ignore[arg-type]
        )

    async def revoke_for_emergency(self, tx: SqliteTransaction, emergency: str, reason: int) -> int:
        """``VideoAccess``: revoke every ACTIVE grant of ``emergency`` inside the caller's ``tx``."""
        rows = await tx.fetchall(
            "SELECT data FROM video_grants WHERE emergency = ? AND state = ?",
            (emergency, C.VIDEO_GRANT_STATE_ACTIVE),
        )
        for row in rows:
            grant = C.VideoGrant.FromString(bytes(row["data"]))
            await self._end(tx, grant, state=C.VIDEO_GRANT_STATE_REVOKED, reason=reason, end=tx.now)
        return len(rows)

    async def expire_due(self) -> int:
        """Grants past ``not_after`` become EXPIRED, ``end_time`` = ``not_after`` [VID-011]."""
        now = to_rfc3339(self.clock.now())
        due = await self.store.fetchone(
            "SELECT 1 FROM video_grants WHERE state = ? AND not_after <= ? LIMIT 1",
            (C.VIDEO_GRANT_STATE_ACTIVE, now),
        )
        if due is None:
            return 0
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT data FROM video_grants WHERE state = ? AND not_after <= ? ORDER BY not_after, name",
                (C.VIDEO_GRANT_STATE_ACTIVE, to_rfc3339(tx.now)),
            )
            for row in rows:
                grant = C.VideoGrant.FromString(bytes(row["data"]))
                end = grant.not_after.ToDatetime(UTC)
                await self._end(
                    tx,
                    grant,
                    state=C.VIDEO_GRANT_STATE_EXPIRED,
                    reason=C.VIDEO_GRANT_REVOCATION_REASON_EXPIRED,
                    end=end,
                )
        return len(rows)

    async def revoke_unentitled(self) -> int:
        """Revoke grants whose emergency ended or moved, or whose dispatch ended [VID-013, PRV-001]."""
        if self._emergencies() is None:
            return 0
        rows = await self.store.fetchall(
            "SELECT name, emergency, agency FROM video_grants WHERE state = ?", (C.VIDEO_GRANT_STATE_ACTIVE,)
        )
        ending: dict[str, int] = {}
        for emergency_name in sorted({str(r["emergency"]) for r in rows}):
            emergency = await self._emergency(emergency_name)
            acknowledged: frozenset[str] | None = None
            if emergency is None or emergency.state in (
                emergency_pb2.EMERGENCY_STATE_RESOLVED,
                emergency_pb2.EMERGENCY_STATE_CANCELLED,
            ):
                reason = C.VIDEO_GRANT_REVOCATION_REASON_EMERGENCY_ENDED
            elif emergency.state == emergency_pb2.EMERGENCY_STATE_TRANSFERRED:
                reason = C.VIDEO_GRANT_REVOCATION_REASON_HANDOFF
            else:
                reason = C.VIDEO_GRANT_REVOCATION_REASON_DISPATCH_ENDED
                acknowledged = await self._acknowledged(emergency_name)
            for r in rows:
                if r["emergency"] == emergency_name and (
                    acknowledged is None or r["agency"] not in acknowledged
                ):
                    ending[str(r["name"])] = reason
        if not ending:
            return 0
        count = 0
        async with self.store.transaction() as tx:
            for name, why in sorted(ending.items()):
                grant = await self._load(name, tx)
                if grant is not None and grant.state == C.VIDEO_GRANT_STATE_ACTIVE:
                    await self._end(tx, grant, state=C.VIDEO_GRANT_STATE_REVOKED, reason=why, end=tx.now)
                    count += 1
        return count


def _replay(stored: bytes) -> C.VideoGrant:
    """The first outcome of a CreateVideoGrant retry: the grant, or the same error [VID-025]."""
    if stored[:1] == b"E":
        first = json.loads(stored[1:])
        raise AnsimError(int(first["reason"]), str(first["message"]))
    return C.VideoGrant.FromString(stored[1:])
