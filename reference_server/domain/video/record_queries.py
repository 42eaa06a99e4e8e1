"""ListAccessRecords (spec §12.7): filters, sequence order, pages, chain head [VID-018, VID-021]."""

from __future__ import annotations

from datetime import UTC

from ansim.v1 import camera_pb2, common_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import to_rfc3339
from reference_server.domain.paging import PageTokens, page_size
from reference_server.domain.video import access_records
from reference_server.security.caller import Caller
from reference_server.store.sqlite import SqliteStore

C = camera_pb2


class AccessRecordQueries:
    def __init__(self, *, center: str, store: SqliteStore, pages: PageTokens) -> None:
        self.center = center
        self.store = store
        self.pages = pages

    async def list(self, request: C.ListAccessRecordsRequest, caller: Caller) -> C.ListAccessRecordsResponse:
        if request.parent != self.center:
            raise AnsimError(
                error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{request.parent} is not this center"
            )
        if caller.role in (
            common_pb2.ROLE_CENTER_OPERATOR,
            common_pb2.ROLE_AUDITOR,
        ) and caller.center not in ("", self.center):
            raise AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "you operate another center")
        where: list[str] = ["sequence >= ?"]
        params: list[object] = [max(1, request.min_sequence)]
        if request.emergency:
            where.append("emergency = ?")
            params.append(request.emergency)
        if request.agency:
            where.append("agency = ?")
            params.append(request.agency)
        if request.HasField("start_time"):
            where.append("record_time >= ?")
            params.append(to_rfc3339(request.start_time.ToDatetime(UTC)))
        if request.HasField("end_time"):
            where.append("record_time < ?")
            params.append(to_rfc3339(request.end_time.ToDatetime(UTC)))
        if request.outcome:
            where.append("outcome = ?")
            params.append(C.AccessOutcome.Name(request.outcome))
        filters = (
            request.__class__(
                emergency=request.emergency,
                agency=request.agency,
                start_time=request.start_time if request.HasField("start_time") else None,
                end_time=request.end_time if request.HasField("end_time") else None,
                outcome=request.outcome,
                min_sequence=request.min_sequence,
            )
            .SerializeToString(deterministic=True)
            .hex()
        )
        if request.page_token:
            where.append("sequence > ?")
            params.append(int(str(self.pages.decode("accessRecords", filters, request.page_token))))
        size = page_size(request.page_size)
        rows = await self.store.fetchall(
            f"SELECT {access_records.COLUMN_LIST} FROM access_records WHERE {' AND '.join(where)}"
            " ORDER BY sequence LIMIT ?",
            (*params, size + 1),
        )
        head = await self.store.fetchone(
            "SELECT sequence, record_hash FROM access_records ORDER BY sequence DESC LIMIT 1"
        )
        oldest = await self.store.fetchone("SELECT MIN(sequence) AS s FROM access_records")
        response = C.ListAccessRecordsResponse(
            access_records=[access_records.to_message(access_records.from_row(r)) for r in rows[:size]],
            head_sequence=int(head["sequence"]) if head else 0,
            head_hash=str(head["record_hash"]) if head else "",
            oldest_retained_sequence=int(oldest["s"]) if oldest and oldest["s"] is not None else 0,
        )
        if len(rows) > size:
            response.next_page_token = self.pages.encode(
                "accessRecords", filters, int(rows[size - 1]["sequence"])
            )
        return response
