"""Center entries of the national directory: registration, updates, reads and the trust registry list.

Every write runs in the caller's transaction (the servicer wraps it in ``idempotent``), gives the
entry a new etag and a revision above every revision issued before [DIR-007], keeps the fingerprint
index that makes a fingerprint belong to at most one center [DIR-004], and appends an audit record.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any

from ansim.v1 import directory_pb2, error_pb2
from google.protobuf import field_mask_pb2

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from ansim_sdk.validation import violations_of
from reference_server.domain.directory.geometry import self_intersecting_rings
from reference_server.store.interface import Store, Transaction

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Fields UpdateCenter may name [DIR-005] (also enforced by the request's CEL rule).
MUTABLE_FIELDS = (
    "display_name_ko",
    "display_name_en",
    "municipalities",
    "service_area",
    "endpoints",
    "certificates",
    "supported_profiles",
    "spec_version",
    "contacts",
    "agencies",
    "state",
)
_NIL_UUID = "00000000-0000-4000-8000-000000000000"


def _not_found(name: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"no center {name}")


def _check_rings(entry: directory_pb2.CenterEntry) -> None:
    bad = self_intersecting_rings(entry.service_area)
    if bad:
        raise InvalidArgument(
            [
                FieldViolation(
                    f"center.service_area.polygons[{i}]", "the polygon's ring intersects itself", "DIR-006"
                )
                for i in bad
            ]
        )


def _check_complete(entry: directory_pb2.CenterEntry) -> None:
    """The merged entry of an UpdateCenter must pass what a CreateCenter would [DIR-002] [DIR-003]."""
    probe = directory_pb2.CreateCenterRequest(center=entry, request_id=_NIL_UUID)
    found = violations_of(probe)
    if found:
        raise InvalidArgument(found)
    if entry.state == directory_pb2.CENTER_STATE_UNSPECIFIED:
        raise InvalidArgument(
            [FieldViolation("center.state", "state must be ACTIVE or SUSPENDED", "DIR-005")]
        )


def _strip_output(entry: directory_pb2.CenterEntry) -> directory_pb2.CenterEntry:
    clean = directory_pb2.CenterEntry()
    clean.CopyFrom(entry)
    for name in ("create_time", "update_time"):
        clean.ClearField(name)
    clean.etag = ""
    clean.revision = 0
    return clean


@dataclass(frozen=True)
class Page:
    centers: list[directory_pb2.CenterEntry]
    next_page_token: str
    directory_revision: int


class CenterRegistry:
    """The directory's entries in the center's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reads -----------------------------------------------------------------------------

    async def revision(self) -> int:
        row = await self._store.fetchone("SELECT revision FROM directory_revision WHERE id = 1")
        return int(row["revision"]) if row else 0

    async def get(self, name: str) -> directory_pb2.CenterEntry:
        row = await self._store.fetchone("SELECT entry FROM directory_centers WHERE name = ?", (name,))
        if row is None:
            raise _not_found(name)
        return directory_pb2.CenterEntry.FromString(row["entry"])

    async def active(self) -> list[directory_pb2.CenterEntry]:
        rows = await self._store.fetchall(
            "SELECT entry FROM directory_centers WHERE state = ? ORDER BY name",
            (directory_pb2.CENTER_STATE_ACTIVE,),
        )
        return [directory_pb2.CenterEntry.FromString(r["entry"]) for r in rows]

    async def list(self, request: directory_pb2.ListCentersRequest) -> Page:
        """Entries with revision > since_revision, ascending, paged [DIR-008] [GEN-020] [GEN-021]."""
        size = request.page_size or DEFAULT_PAGE_SIZE
        size = min(size, MAX_PAGE_SIZE)
        after = request.since_revision
        if request.page_token:
            after = _decode_token(request.page_token, request.since_revision)
        head = await self.revision()
        rows = await self._store.fetchall(
            "SELECT entry, revision FROM directory_centers WHERE revision > ? ORDER BY revision LIMIT ?",
            (after, size + 1),
        )
        more = len(rows) > size
        rows = rows[:size]
        token = _encode_token(request.since_revision, int(rows[-1]["revision"])) if more else ""
        return Page([directory_pb2.CenterEntry.FromString(r["entry"]) for r in rows], token, head)

    # -- writes ----------------------------------------------------------------------------

    async def _next_revision(self, tx: Transaction) -> int:
        await tx.execute("UPDATE directory_revision SET revision = revision + 1 WHERE id = 1")
        row = await tx.fetchone("SELECT revision FROM directory_revision WHERE id = 1")
        assert row is not None
        return int(row["revision"])

    async def _claim_fingerprints(self, tx: Transaction, entry: directory_pb2.CenterEntry) -> None:
        for pin in entry.certificates:
            row = await tx.fetchone(
                "SELECT center FROM directory_fingerprints WHERE fingerprint = ?", (pin.sha256_fingerprint,)
            )
            if row is not None and row["center"] != entry.name:
                raise AnsimError(
                    error_pb2.ERROR_REASON_ALREADY_EXISTS,
                    f"certificate {pin.sha256_fingerprint} is registered for another center",
                )
        await tx.execute("DELETE FROM directory_fingerprints WHERE center = ?", (entry.name,))
        for pin in entry.certificates:
            await tx.execute(
                "INSERT OR IGNORE INTO directory_fingerprints (fingerprint, center) VALUES (?, ?)",
                (pin.sha256_fingerprint, entry.name),
            )

    async def _stamp(self, tx: Transaction, entry: directory_pb2.CenterEntry) -> None:
        entry.revision = await self._next_revision(tx)
        entry.etag = uuid.uuid4().hex
        entry.update_time.FromDatetime(tx.now)

    async def create(
        self, tx: Transaction, request: directory_pb2.CreateCenterRequest, actor: str
    ) -> directory_pb2.CenterEntry:
        entry = _strip_output(request.center)
        _check_rings(entry)
        if entry.state == directory_pb2.CENTER_STATE_UNSPECIFIED:
            entry.state = directory_pb2.CENTER_STATE_ACTIVE
        if await tx.fetchone("SELECT 1 FROM directory_centers WHERE name = ?", (entry.name,)):
            raise AnsimError(error_pb2.ERROR_REASON_ALREADY_EXISTS, f"center {entry.name} exists")
        await self._claim_fingerprints(tx, entry)
        await self._stamp(tx, entry)
        entry.create_time.FromDatetime(tx.now)
        await tx.execute(
            "INSERT INTO directory_centers (name, revision, etag, state, entry) VALUES (?, ?, ?, ?, ?)",
            (entry.name, entry.revision, entry.etag, entry.state, entry.SerializeToString()),
        )
        await tx.append_audit(actor, "directory.create_center", entry.name, "registration", "ok")
        return entry

    async def update(
        self, tx: Transaction, request: directory_pb2.UpdateCenterRequest, actor: str
    ) -> directory_pb2.CenterEntry:
        name = request.center.name
        row = await tx.fetchone("SELECT entry FROM directory_centers WHERE name = ?", (name,))
        if row is None:
            raise _not_found(name)
        stored = directory_pb2.CenterEntry.FromString(row["entry"])
        if request.center.etag and request.center.etag != stored.etag:
            raise AnsimError(error_pb2.ERROR_REASON_ETAG_MISMATCH, "the entry changed since it was read")
        merged = _merge(stored, request.center, request.update_mask)
        _check_complete(_strip_output(merged))
        _check_rings(merged)
        await self._claim_fingerprints(tx, merged)
        await self._stamp(tx, merged)
        await tx.execute(
            "UPDATE directory_centers SET revision = ?, etag = ?, state = ?, entry = ? WHERE name = ?",
            (merged.revision, merged.etag, merged.state, merged.SerializeToString(), name),
        )
        fields = ",".join(request.update_mask.paths)
        await tx.append_audit(actor, f"directory.update_center[{fields}]", name, "registration", "ok")
        return merged


def _merge(
    stored: directory_pb2.CenterEntry, given: directory_pb2.CenterEntry, mask: field_mask_pb2.FieldMask
) -> directory_pb2.CenterEntry:
    merged = directory_pb2.CenterEntry()
    merged.CopyFrom(stored)
    target: Any = merged  # fields addressed by name
    source: Any = given
    for path in mask.paths:
        if path not in MUTABLE_FIELDS:  # the request's CEL rule refuses these first
            raise InvalidArgument([FieldViolation("update_mask", f"{path!r} may not be updated", "DIR-005")])
        target.ClearField(path)
        field: Any = given.DESCRIPTOR.fields_by_name[path]
        if field.is_repeated:
            getattr(target, path).extend(getattr(source, path))
        elif field.message_type is not None:
            if source.HasField(path):
                getattr(target, path).CopyFrom(getattr(source, path))
        else:
            setattr(target, path, getattr(source, path))
    return merged


def _encode_token(since: int, after: int) -> str:
    raw = json.dumps({"s": since, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, since: int) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("s") != since or not isinstance(data.get("a"), int):
            raise ValueError("token does not belong to this query")
        return int(data["a"])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AnsimError(
            error_pb2.ERROR_REASON_PAGE_TOKEN_INVALID,
            "page_token is not a token of this ListCenters query (same since_revision)",
        ) from None
