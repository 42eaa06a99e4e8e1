"""The registry of wards, tags, readers and zones (spec §14.3): references, immutable fields,
field-mask updates, deletion rules and who sees what (CHD-001..CHD-016)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, error_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from ansim_sdk.validation import violations_of
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import (
    OPERATORS,
    Queryable,
    center_of,
    not_found,
    not_owner,
    refine,
    to_ts,
)
from reference_server.domain.paging import PageTokens, page_size
from reference_server.security.caller import Caller
from reference_server.store.interface import Transaction

Resource = cs.Ward | cs.Tag | cs.Reader | cs.Zone
R = TypeVar("R", cs.Ward, cs.Tag, cs.Reader, cs.Zone)

#: Resource field name in requests, per collection.
FIELD = {"wards": "ward", "tags": "tag", "readers": "reader", "zones": "zone"}
IMMUTABLE = {"wards": frozenset[str](), "tags": frozenset({"kind", "uid"}), "readers": frozenset({"kind"})}
IMMUTABLE["zones"] = frozenset({"kind"})
OUTPUT_ONLY = {
    "wards": frozenset({"name", "create_time", "update_time"}),
    "tags": frozenset({"name", "create_time", "update_time", "battery_percent", "last_seen_time"}),
    "readers": frozenset({"name", "create_time", "update_time", "last_event_time"}),
    "zones": frozenset({"name", "create_time", "update_time"}),
}
PLACE_READER_ZONE = {
    cs.READER_KIND_SCHOOL_GATE: cs.ZONE_KIND_SCHOOL,
    cs.READER_KIND_HOME: cs.ZONE_KIND_HOME,
    cs.READER_KIND_ACADEMY: cs.ZONE_KIND_ACADEMY,
}
DEFAULT_ENTRY_SIGHTINGS = 2
DEFAULT_ENTRY_DWELL_S = 60
DEFAULT_EXIT_ABSENCE_S = 300


def effective_zone(zone: cs.Zone) -> cs.Zone:
    """The zone as returned: a DANGER zone with its effective hysteresis filled in (CHD-015)."""
    if zone.kind != cs.ZONE_KIND_DANGER:
        return zone
    out = cs.Zone()
    out.CopyFrom(zone)
    h = out.hysteresis
    if h.entry_sightings == 0:
        h.entry_sightings = DEFAULT_ENTRY_SIGHTINGS
    if not h.HasField("entry_dwell"):
        h.entry_dwell.CopyFrom(duration_pb2.Duration(seconds=DEFAULT_ENTRY_DWELL_S))
    if not h.HasField("exit_absence"):
        h.exit_absence.CopyFrom(duration_pb2.Duration(seconds=DEFAULT_EXIT_ABSENCE_S))
    return out


def _effective(resource: Any) -> Any:
    return effective_zone(resource) if isinstance(resource, cs.Zone) else resource


def _prefixed(violations: Sequence[FieldViolation], prefix: str) -> list[FieldViolation]:
    return [
        FieldViolation(f"{prefix}.{v.field}" if v.field else prefix, v.description, v.requirement)
        for v in violations
    ]


class Registry:
    """Registry operations of one center. Mutations run in the caller's transaction."""

    def __init__(self, center: str, pages: PageTokens) -> None:
        self.center = center
        self.pages = pages

    # --- visibility ---------------------------------------------------------------------------------

    def recipient_of(self, caller: Caller) -> str:
        """``centers/{c}/guardians/{g}`` of a GUARDIAN caller."""
        return f"{self.center}/guardians/{caller.subject.removeprefix('guardians/')}"

    async def guardian_wards(self, q: Queryable, caller: Caller) -> list[cs.Ward]:
        me = self.recipient_of(caller)
        return [w for w in await repository.list_all(q, "wards", cs.Ward) if me in w.guardians]

    async def visible(self, q: Queryable, caller: Caller, resource: Resource) -> bool:
        """Whether ``caller`` may see ``resource`` (CHD-012, CHD-013); operators see everything."""
        if caller.role == common_pb2.ROLE_GUARDIAN:
            me = self.recipient_of(caller)
            if isinstance(resource, cs.Ward):
                return me in resource.guardians
            if isinstance(resource, cs.Tag):
                ward = await repository.load(q, resource.ward, cs.Ward) if resource.ward else None
                return ward is not None and me in ward.guardians
            if isinstance(resource, cs.Zone):
                if resource.kind != cs.ZONE_KIND_HOME:
                    return True
                return any(resource.name in w.place_zones for w in await self.guardian_wards(q, caller))
            return False
        if caller.role == common_pb2.ROLE_READER_GATEWAY:
            return isinstance(resource, cs.Reader) and resource.gateway == caller.subject
        return True

    # --- reads --------------------------------------------------------------------------------------

    async def get(self, q: Queryable, caller: Caller, name: str, cls: type[R]) -> R:
        found = await repository.load(q, name, cls)
        if found is None:
            raise not_found(name)
        if not await self.visible(q, caller, found):
            raise not_owner(f"{name} is not yours to read")
        return cast(R, _effective(found))

    async def list_page(
        self,
        q: Queryable,
        caller: Caller,
        collection: str,
        cls: type[R],
        request: Any,
        keep: Any = None,
    ) -> tuple[list[R], str]:
        """One page of ``collection`` that ``caller`` may see and ``keep(resource)`` accepts."""
        parent = cast(str, request.parent)
        if parent != self.center:
            raise not_found(parent)
        scope_request = type(request)()
        scope_request.CopyFrom(request)
        scope_request.ClearField("page_token")
        scope_request.ClearField("page_size")
        scope = f"{collection}|{caller.key}|" + scope_request.SerializeToString(deterministic=True).hex()
        after = str(self.pages.decode(scope, "", cast(str, request.page_token)) or "")
        size = page_size(cast(int, request.page_size))
        out: list[R] = []
        more = False
        for item in await repository.list_all(q, collection, cls, after):
            if keep is not None and not keep(item):
                continue
            if not await self.visible(q, caller, item):
                continue
            if len(out) == size:
                more = True
                break
            out.append(cast(R, _effective(item)))
        token = self.pages.encode(scope, "", out[-1].name) if more and out else ""
        return out, token

    # --- reference checks ---------------------------------------------------------------------------

    async def _zone_ref(
        self, q: Queryable, name: str, field: str, kinds: Sequence[int], problems: list[FieldViolation]
    ) -> cs.Zone | None:
        if center_of(name) != self.center:
            problems.append(FieldViolation(field, "CHD-004: the zone is not of this center", "CHD-004"))
            return None
        zone = await repository.load(q, name, cs.Zone)
        if zone is None:
            problems.append(FieldViolation(field, "CHD-004: the zone does not exist", "CHD-004"))
            return None
        if kinds and zone.kind not in kinds:
            wanted = " or ".join(cs.ZoneKind.Name(k) for k in kinds)  # type: ignore[arg-type]
            problems.append(FieldViolation(field, f"CHD-004: the zone must be of kind {wanted}", "CHD-004"))
            return None
        return zone

    def _guardian_ref(self, name: str, field: str, problems: list[FieldViolation]) -> None:
        if center_of(name) != self.center:
            problems.append(FieldViolation(field, "CHD-004: the guardian is not of this center", "CHD-004"))
        elif name.endswith(f"/guardians/{OPERATORS}"):
            problems.append(FieldViolation(field, "CHD-004: the id `operators` is reserved", "CHD-004"))

    async def check_references(self, q: Queryable, collection: str, resource: Resource) -> None:
        """INVALID_FIELD for every broken reference of ``resource`` (CHD-004, CHD-007, CHD-016)."""
        prefix = FIELD[collection]
        problems: list[FieldViolation] = []
        if isinstance(resource, cs.Ward):
            for i, g in enumerate(resource.guardians):
                self._guardian_ref(g, f"{prefix}.guardians[{i}]", problems)
            await self._zone_ref(
                q, resource.school_zone, f"{prefix}.school_zone", [cs.ZONE_KIND_SCHOOL], problems
            )
            academies = {resource.school_zone}
            for i, z in enumerate(resource.place_zones):
                zone = await self._zone_ref(
                    q, z, f"{prefix}.place_zones[{i}]", [cs.ZONE_KIND_HOME, cs.ZONE_KIND_ACADEMY], problems
                )
                if zone is not None and zone.kind == cs.ZONE_KIND_ACADEMY:
                    academies.add(z)
            for i, e in enumerate(resource.expected_arrivals):
                if e.zone not in academies:
                    problems.append(
                        FieldViolation(
                            f"{prefix}.expected_arrivals[{i}].zone",
                            "CHD-016: must be the ward's school_zone or one of its ACADEMY place zones",
                            "CHD-016",
                        )
                    )
        elif isinstance(resource, cs.Tag):
            if resource.ward:
                if center_of(resource.ward) != self.center:
                    problems.append(
                        FieldViolation(f"{prefix}.ward", "CHD-004: the ward is not of this center")
                    )
                elif await repository.load(q, resource.ward, cs.Ward) is None:
                    problems.append(FieldViolation(f"{prefix}.ward", "CHD-004: the ward does not exist"))
        elif isinstance(resource, cs.Reader):
            wanted = PLACE_READER_ZONE.get(resource.kind)
            if wanted is not None:
                await self._zone_ref(q, resource.zone, f"{prefix}.zone", [wanted], problems)
            elif resource.zone:
                await self._zone_ref(q, resource.zone, f"{prefix}.zone", [], problems)
        else:
            for i, g in enumerate(resource.school_contacts):
                self._guardian_ref(g, f"{prefix}.school_contacts[{i}]", problems)
        if problems:
            raise InvalidArgument(problems)

    async def _check_uid(self, q: Queryable, tag: cs.Tag) -> None:
        other = await repository.tag_by_uid(q, tag.uid)
        if other is not None and other.name != tag.name:
            raise AnsimError(
                error_pb2.ERROR_REASON_ALREADY_EXISTS, "a tag with this uid is already registered"
            )

    # --- mutations ----------------------------------------------------------------------------------

    async def create(self, tx: Transaction, collection: str, parent: str, resource_id: str, resource: R) -> R:
        if parent != self.center:
            raise not_found(parent)
        name = f"{parent}/{collection}/{resource_id or uuid.uuid4().hex[:20]}"
        stored = type(resource)()
        stored.CopyFrom(resource)
        for field in OUTPUT_ONLY[collection]:
            stored.ClearField(field)  # type: ignore[arg-type]
        stored.name = name
        if await tx.fetchone("SELECT 1 FROM cs_resources WHERE name = ?", (name,)) is not None:
            raise AnsimError(error_pb2.ERROR_REASON_ALREADY_EXISTS, f"{name} already exists")
        await self.check_references(tx, collection, stored)
        if isinstance(stored, cs.Tag):
            await self._check_uid(tx, stored)
        stored.create_time.CopyFrom(to_ts(tx.now))
        stored.update_time.CopyFrom(to_ts(tx.now))
        await repository.save(tx, name, stored)
        return cast(R, _effective(stored))

    async def update(
        self,
        tx: Transaction,
        collection: str,
        resource: R,
        mask: field_mask_pb2.FieldMask,
        request_violations: Sequence[FieldViolation],
    ) -> R:
        """Apply ``mask`` (CHD-006, CHD-009); ``request_violations`` are those of the request outside
        the resource, which is validated after the merge."""
        prefix = FIELD[collection]
        if request_violations:
            raise InvalidArgument(request_violations)
        if not resource.name:
            raise InvalidArgument(
                [FieldViolation(f"{prefix}.name", "CHD-009: the resource name is required")]
            )
        if not mask.paths:
            raise InvalidArgument([FieldViolation("update_mask", "CHD-009: update_mask must not be empty")])
        descriptor = resource.DESCRIPTOR
        paths: list[str] = []
        for path in mask.paths:
            top = path.split(".", 1)[0]
            if top not in descriptor.fields_by_name or not _path_exists(descriptor, path):
                raise InvalidArgument([FieldViolation("update_mask", f"CHD-009: {path!r} names no field")])
            if top in IMMUTABLE[collection]:
                raise InvalidArgument([FieldViolation("update_mask", f"CHD-006: {top!r} is immutable")])
            if top not in OUTPUT_ONLY[collection]:
                paths.append(path)
        existing = await repository.load(tx, resource.name, type(resource))
        if existing is None:
            raise not_found(resource.name)
        merged = type(resource)()
        merged.CopyFrom(existing)
        if paths:
            field_mask_pb2.FieldMask(paths=paths).MergeMessage(
                resource, merged, replace_message_field=True, replace_repeated_field=True
            )
        found = violations_of(merged)
        if found:
            raise InvalidArgument(refine(_prefixed(found, prefix)))
        await self.check_references(tx, collection, merged)
        if isinstance(merged, cs.Tag):
            await self._check_uid(tx, merged)
        merged.update_time.CopyFrom(to_ts(tx.now))
        await repository.save(tx, merged.name, merged)
        return cast(R, _effective(merged))

    async def delete(self, tx: Transaction, collection: str, name: str) -> None:
        cls = repository.COLLECTION_TYPES[collection]
        existing = await repository.load(tx, name, cls)
        if existing is None:
            raise not_found(name)
        if isinstance(existing, cs.Zone):
            await self._check_zone_unused(tx, name)
        if isinstance(existing, cs.Ward):
            await self._erase_ward(tx, name)
        await repository.remove(tx, name)

    async def _check_zone_unused(self, tx: Transaction, name: str) -> None:
        for ward in await repository.list_all(tx, "wards", cs.Ward):
            refs = {ward.school_zone, *ward.place_zones, *(e.zone for e in ward.expected_arrivals)}
            if name in refs:
                raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_IN_USE, f"{ward.name} refers to the zone")
        for reader in await repository.list_all(tx, "readers", cs.Reader):
            if reader.zone == name:
                raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_IN_USE, f"{reader.name} refers to the zone")

    async def _erase_ward(self, tx: Transaction, ward: str) -> None:
        """CHD-011: untie its tags and erase its sightings, state and notifications now."""
        for tag in await repository.list_all(tx, "tags", cs.Tag):
            if tag.ward == ward:
                tag.ward = ""
                tag.active = False
                tag.update_time.CopyFrom(to_ts(tx.now))
                await repository.save(tx, tag.name, tag)
        for table in ("cs_sightings", "cs_ward_clock", "cs_presence", "cs_danger", "cs_expected_checked"):
            await tx.execute(f"DELETE FROM {table} WHERE ward = ?", (ward,))
        await tx.execute(
            "DELETE FROM cs_alerts WHERE derived_event_id IN (SELECT id FROM cs_derived WHERE ward = ?)",
            (ward,),
        )
        await tx.execute("DELETE FROM cs_notifications WHERE ward = ?", (ward,))
        await tx.execute("DELETE FROM cs_derived WHERE ward = ?", (ward,))


def _path_exists(descriptor: Any, path: str) -> bool:
    for part in path.split("."):
        if descriptor is None or part not in descriptor.fields_by_name:
            return False
        field = descriptor.fields_by_name[part]
        descriptor = None if field.is_repeated else field.message_type
    return True
