"""Ward location and track (spec §15.6): who may read them (GRD-014), the audit record of every
read (GRD-015), the newest sighting by observed time (GRD-016) and the track window (GRD-017)."""

from __future__ import annotations

from datetime import UTC, timedelta

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, error_pb2
from ansim.v1 import guardian_pb2 as gd

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock, from_rfc3339, to_rfc3339
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import not_owner, parse
from reference_server.domain.child_safety.ingest import ACTIVE_EMERGENCY_STATES
from reference_server.domain.paging import PageTokens, page_size
from reference_server.domain.ports import DomainPorts
from reference_server.security.caller import Caller
from reference_server.store.interface import Store


class WardLocations:
    def __init__(
        self,
        center: str,
        store: Store,
        clock: Clock,
        ports: DomainPorts,
        pages: PageTokens,
        retention: timedelta,
    ) -> None:
        self.center = center
        self.store = store
        self.clock = clock
        self.ports = ports
        self.pages = pages
        #: How long sightings are kept (older ones are never returned, PRV-011, GRD-017).
        self.retention = retention

    async def _authorize(self, caller: Caller, ward_name: str, related_emergency: str) -> cs.Ward:
        ward = await repository.load(self.store, ward_name, cs.Ward)
        if ward is None:
            raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{ward_name} does not exist")
        if caller.role == common_pb2.ROLE_GUARDIAN:
            me = f"{self.center}/guardians/{caller.subject.removeprefix('guardians/')}"
            if me not in ward.guardians:
                raise not_owner("you are not a guardian of this ward")
            return ward
        if caller.role == common_pb2.ROLE_CENTER_OPERATOR and related_emergency:
            raised_for_ward = await self.store.fetchone(
                "SELECT 1 FROM cs_derived WHERE emergency = ? AND ward = ?", (related_emergency, ward_name)
            )
            port = self.ports.emergencies
            emergency = await port.get(related_emergency) if port is not None and raised_for_ward else None
            if emergency is not None and emergency.state in ACTIVE_EMERGENCY_STATES:
                return ward
        raise not_owner("an operator reads a ward's location only for an active emergency of the ward")

    async def _audited(self, caller: Caller, rpc: str, ward_name: str, related_emergency: str) -> cs.Ward:
        """Authorize and append the audit record, allowed or denied, before any answer (GRD-015)."""
        try:
            ward = await self._authorize(caller, ward_name, related_emergency)
        except AnsimError as error:
            await self._audit(caller, rpc, ward_name, related_emergency, f"denied: {error.message}")
            raise
        await self._audit(caller, rpc, ward_name, related_emergency, "allowed")
        return ward

    async def _audit(self, caller: Caller, rpc: str, ward: str, related: str, outcome: str) -> None:
        async with self.store.transaction() as tx:
            await tx.append_audit(
                f"{caller.subject} ({caller.role_name})",
                f"ansim.v1.GuardianService/{rpc}",
                ward,
                related or "guardian",
                outcome,
            )

    def _cutoff(self) -> str:
        return to_rfc3339(self.clock.now() - self.retention)

    async def get_location(self, caller: Caller, request: gd.GetWardLocationRequest) -> gd.WardLocation:
        await self._audited(caller, "GetWardLocation", request.ward, request.related_emergency)
        row = await self.store.fetchone(
            "SELECT * FROM cs_sightings WHERE ward = ? AND observed >= "
            "? ORDER BY observed DESC, id DESC LIMIT 1",
            (request.ward, self._cutoff()),
        )
        out = gd.WardLocation(ward=request.ward)
        if row is None:
            return out
        reader = await repository.load(self.store, row["reader"], cs.Reader)
        out.reader = row["reader"]
        out.reader_kind = int(row["reader_kind"])  # type: ignore[assignment]
        out.reader_display_name = reader.display_name if reader is not None else ""
        out.location.CopyFrom(parse(common_pb2.Location, row["location"]))
        out.observed_time.FromDatetime(from_rfc3339(row["observed"]))
        presence = await self.store.fetchone(
            "SELECT zone FROM cs_presence WHERE ward = ? AND inside = 1 ORDER BY last_sighting DESC LIMIT 1",
            (request.ward,),
        )
        if presence is not None:
            out.zone = presence["zone"]
        return out

    async def list_track(self, caller: Caller, request: gd.ListWardTrackRequest) -> gd.ListWardTrackResponse:
        await self._audited(caller, "ListWardTrack", request.ward, request.related_emergency)
        scope_request = gd.ListWardTrackRequest()
        scope_request.CopyFrom(request)
        scope_request.ClearField("page_token")
        scope_request.ClearField("page_size")
        scope = f"track|{caller.key}|" + scope_request.SerializeToString(deterministic=True).hex()
        after = int(str(self.pages.decode(scope, "", request.page_token) or 0))
        start = max(to_rfc3339(request.start_time.ToDatetime(tzinfo=UTC)), self._cutoff())
        end = to_rfc3339(request.end_time.ToDatetime(tzinfo=UTC))
        size = page_size(request.page_size)
        rows = await self.store.fetchall(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY observed, id) AS pos FROM cs_sightings"
            " WHERE ward = ? AND observed >= ? AND observed < ?) WHERE pos > ? ORDER BY pos LIMIT ?",
            (request.ward, start, end, after, size + 1),
        )
        out = gd.ListWardTrackResponse()
        for row in rows[:size]:
            point = out.track_points.add(
                reader=row["reader"],
                reader_kind=int(row["reader_kind"]),
                derived_event_kind=int(row["derived"]),
            )
            point.location.CopyFrom(parse(common_pb2.Location, row["location"]))
            point.observed_time.FromDatetime(from_rfc3339(row["observed"]))
        if len(rows) > size:
            out.next_page_token = self.pages.encode(scope, "", str(rows[size - 1]["pos"]))
        return out
