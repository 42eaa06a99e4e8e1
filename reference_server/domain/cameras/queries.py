"""GetCamera, ListCameras and SearchNearbyCameras over the store and the index (spec §12.2)."""

from __future__ import annotations

from collections.abc import Callable

from ansim.v1 import camera_pb2, common_pb2, emergency_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.domain.cameras import repository
from reference_server.domain.cameras.inventory import CameraInventory
from reference_server.domain.paging import PageTokens, page_size
from reference_server.domain.ports import EmergencyIntake
from reference_server.security.caller import Caller
from reference_server.store.sqlite import SqliteStore

C = camera_pb2
E = error_pb2
DEFAULT_LIMIT = 20
ENDED = frozenset(
    {
        emergency_pb2.EMERGENCY_STATE_RESOLVED,
        emergency_pb2.EMERGENCY_STATE_CANCELLED,
        emergency_pb2.EMERGENCY_STATE_TRANSFERRED,
    }
)


def not_found(what: str) -> AnsimError:
    return AnsimError(E.ERROR_REASON_RESOURCE_NOT_FOUND, f"{what} does not exist at this center")


class CameraQueries:
    def __init__(
        self,
        *,
        center: str,
        store: SqliteStore,
        inventory: CameraInventory,
        pages: PageTokens,
        emergencies: Callable[[], EmergencyIntake | None],
    ) -> None:
        self.center = center
        self.store = store
        self.inventory = inventory
        self.pages = pages
        self._emergencies = emergencies

    def _own_parent(self, parent: str) -> None:
        if parent != self.center:
            raise not_found(parent)

    async def get(self, name: str) -> C.Camera:
        prefix = f"{self.center}/cameras/"
        if not name.startswith(prefix):
            raise not_found(name)
        rows = await self.store.fetchall(repository.fetch_by_ids_sql(1), (name.removeprefix(prefix),))
        if not rows:
            raise not_found(name)  # [CAM-010]
        return repository.camera_from_row(self.center, rows[0])

    async def list(self, request: C.ListCamerasRequest) -> C.ListCamerasResponse:
        self._own_parent(request.parent)
        filters = f"{request.purpose}|{request.agency_code}"
        after = ""
        if request.page_token:
            after = str(self.pages.decode("cameras", filters, request.page_token))
        size = page_size(request.page_size)
        sql, params = repository.list_sql(request.purpose, request.agency_code, after, size + 1)
        rows = await self.store.fetchall(sql, params)
        response = C.ListCamerasResponse(
            cameras=[repository.camera_from_row(self.center, r) for r in rows[:size]]
        )
        if len(rows) > size:
            response.next_page_token = self.pages.encode("cameras", filters, str(rows[size - 1]["camera_id"]))
        return response

    async def _emergency_origin(self, name: str, caller: Caller) -> tuple[float, float] | None:
        """The emergency's current location, after the checks of CAM-016 (None: no location yet)."""
        port = self._emergencies()
        emergency = None
        if port is not None and name.startswith(f"{self.center}/emergencies/"):
            emergency = await port.get(name)
        if emergency is None:
            raise not_found(name)
        if emergency.state in ENDED:
            raise AnsimError(E.ERROR_REASON_EMERGENCY_NOT_ACTIVE, "the emergency is no longer active")
        if caller.role in (common_pb2.ROLE_POLICE_OFFICER, common_pb2.ROLE_FIRE_OFFICER):
            dispatched = {d.agency for d in emergency.dispatched_agencies}
            if port is not None:
                dispatched |= await port.acknowledged_agencies(name)
            if caller.agency not in dispatched:
                raise AnsimError(E.ERROR_REASON_NOT_OWNER, "your agency has no dispatch for this emergency")
        if not emergency.HasField("last_location"):
            return None
        return emergency.last_location.latitude, emergency.last_location.longitude

    async def search(
        self, request: C.SearchNearbyCamerasRequest, caller: Caller
    ) -> C.SearchNearbyCamerasResponse:
        self._own_parent(request.parent)
        origin: tuple[float, float] | None
        which = request.WhichOneof("origin")
        if which == "point":
            origin = (request.point.latitude, request.point.longitude)
        elif which == "location":
            origin = (request.location.latitude, request.location.longitude)
        else:
            origin = await self._emergency_origin(request.emergency, caller)
        if origin is None:
            return C.SearchNearbyCamerasResponse()
        limit = request.limit or DEFAULT_LIMIT
        hits = self.inventory.search(origin[0], origin[1], request.radius_m, limit, list(request.purposes))
        if not hits:
            return C.SearchNearbyCamerasResponse()
        rows = await self.store.fetchall(
            repository.fetch_by_keys_sql(len(hits)), tuple(k for k, _, _ in hits)
        )
        by_key = {int(r["key"]): r for r in rows}
        response = C.SearchNearbyCamerasResponse()
        for key, _, distance in hits:
            row = by_key.get(key)
            if row is None or not row["searchable"]:
                continue  # changed since the index saw it
            response.results.add(camera=repository.camera_from_row(self.center, row), distance_m=distance)
        return response
