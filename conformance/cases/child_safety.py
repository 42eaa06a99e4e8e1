"""Child-safety cases, server side (spec §14): the registry (CHD-*) and the reader-gateway ingest
with its derivation rules (TAG-*).

Every case provisions its own small world over the API (``fixtures.child_safety.provisioning: api``,
the default): a school zone with a school contact, a home, an academy, a danger zone (a 30 m circle,
always active), one reader of each kind owned by the suite's READER_GATEWAY subject, one ward with
its own guardian and one tag — all TEST data named with the run's prefix, at a random spot near the
declared location so that no two cases' danger zones meet. Guardians and school contacts are minted
GUARDIAN tokens with their own subjects, so every case needs ``credentials.test_issuer``.

The time-based rules run on TEST-mode timers: TAG-015 on an expected window the case sets to end a
moment ago with a grace of a few seconds (TEST-mode detection within 5 s, TAG-023), TAG-014 on the
TEST exit absence the vendor declares in ``test_timers`` (TAG-022; skipped above 20 s).

Not covered here: TAG-002 (durability across a restart), TAG-020 (SHOULD, operator console), GW-*
(reader-gateway client role: the suite would have to play the center).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc as csg
from ansim.v1 import common_pb2
from ansim.v1 import guardian_pb2 as gd
from ansim.v1 import guardian_pb2_grpc as gdg
from google.protobuf import duration_pb2, field_mask_pb2

from ansim_sdk.errors import code_of, parse_status_proto
from conformance import CaseContext, case, check, expect_error, expect_ok

PROFILE = "child-safety"
OPERATOR = "CENTER_OPERATOR"
GATEWAY = "READER_GATEWAY"
DEFAULT_BASE = (37.5665, 126.9780)
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ACCEPTED = cs.TAG_EVENT_ACK_STATUS_ACCEPTED
DUPLICATE = cs.TAG_EVENT_ACK_STATUS_DUPLICATE
REJECTED = cs.TAG_EVENT_ACK_STATUS_REJECTED
#: GRD-001: notifications appear within 5 s; the suite allows a little more for the network.
NOTIFY_WAIT_S = 7.0


def now() -> datetime:
    return datetime.now(UTC)


def short(ctx: CaseContext) -> str:
    """A per-case fragment for ids: TC_CHD_004_SRV → chd004 (cases run concurrently)."""
    parts = ctx.case_id.lower().split("_")
    return f"{parts[1]}{parts[2]}"


def new_id(ctx: CaseContext, kind: str) -> str:
    return ctx.resource_id(f"{short(ctx)}{kind}")


def random_uid() -> str:
    return uuid.uuid4().hex[:16].upper()


def circle(lat: float, lon: float, radius_m: float) -> common_pb2.Area:
    area = common_pb2.Area()
    area.circles.add(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=radius_m)
    return area


def point(lat: float, lon: float) -> common_pb2.Point:
    return common_pb2.Point(latitude=lat, longitude=lon)


def guardian_token(ctx: CaseContext, guardian_id: str) -> str:
    return ctx.tokens.mint("GUARDIAN", claims={"sub": f"guardians/{guardian_id}"})


def gateway_subject(ctx: CaseContext) -> str:
    return ctx.tokens.subject_claims(GATEWAY)["sub"]


@dataclass
class World:
    """One case's provisioned wards, tags, readers and zones (see the module docstring)."""

    ctx: CaseContext
    center: str
    lat: float
    lon: float
    guardian_id: str
    contact_id: str
    school: cs.Zone
    home: cs.Zone
    academy: cs.Zone
    danger: cs.Zone
    gate: cs.Reader
    home_reader: cs.Reader
    academy_reader: cs.Reader
    bell: cs.Reader
    street: cs.Reader
    ward: cs.Ward
    tag: cs.Tag

    @property
    def guardian(self) -> str:
        return f"{self.center}/guardians/{self.guardian_id}"

    @property
    def contact(self) -> str:
        return f"{self.center}/guardians/{self.contact_id}"

    def guardian_token(self) -> str:
        return guardian_token(self.ctx, self.guardian_id)

    def contact_token(self) -> str:
        return guardian_token(self.ctx, self.contact_id)

    def registry(self, role: str = OPERATOR, token: str | None = None) -> Any:
        return self.ctx.stub(csg.ChildSafetyServiceStub, role, token=token)

    def guardians(self, token: str | None = None, role: str = "GUARDIAN") -> Any:
        return self.ctx.stub(gdg.GuardianServiceStub, role, token=token or self.guardian_token())

    def events(self, token: str | None = None) -> Any:
        return self.ctx.stub(csg.TagEventServiceStub, GATEWAY, token=token)

    def sighting(
        self,
        reader: cs.Reader,
        observed: datetime | None = None,
        direction: int = cs.SIGHTING_DIRECTION_UNSPECIFIED,
        uid: str | None = None,
    ) -> cs.TagEvent:
        event = cs.TagEvent(
            event_id=str(uuid.uuid4()),
            reader=reader.name,
            tag_uid=uid or self.tag.uid,
            kind=cs.TAG_EVENT_KIND_SIGHTING,
            mode=self.ctx.mode,
            sighting=cs.SightingDetails(rssi_dbm=-60, direction=direction),  # type: ignore[arg-type]
        )
        event.observed_time.FromDatetime(observed or now() - timedelta(seconds=2))
        return event

    def event(self, reader: cs.Reader, kind: Any, uid: str = "", **details: Any) -> cs.TagEvent:
        event = cs.TagEvent(
            event_id=str(uuid.uuid4()),
            reader=reader.name,
            tag_uid=uid,
            kind=kind,
            mode=self.ctx.mode,
            **details,
        )
        event.observed_time.FromDatetime(now() - timedelta(seconds=2))
        return event

    async def submit(self, *events: cs.TagEvent, token: str | None = None) -> list[cs.TagEventAck]:
        response = await expect_ok(
            self.events(token).SubmitTagEvents(
                cs.SubmitTagEventsRequest(events=list(events), request_id=self.ctx.request_id())
            ),
            "SubmitTagEvents",
        )
        check(
            len(response.acks) == len(events), f"{len(events)} events got {len(response.acks)} acks [TAG-009]"
        )
        for sent, got in zip(events, response.acks, strict=True):
            check(got.event_id == sent.event_id, "acks must come in the order of the events [TAG-009]")
        return list(response.acks)

    async def notifications(
        self, token: str | None = None, recipient: str | None = None
    ) -> list[gd.Notification]:
        response = await expect_ok(
            self.guardians(token).ListNotifications(
                gd.ListNotificationsRequest(parent=recipient or self.guardian, page_size=1000)
            ),
            "ListNotifications",
        )
        return list(response.notifications)

    async def wait_for(
        self,
        kind: int,
        *,
        count: int = 1,
        token: str | None = None,
        recipient: str | None = None,
        wait_s: float = NOTIFY_WAIT_S,
    ) -> list[gd.Notification]:
        """Poll the recipient's notifications until ``count`` of ``kind`` exist (or the time is up)."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            found = [n for n in await self.notifications(token, recipient) if n.event_kind == kind]
            if len(found) >= count or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.5)


async def create(ctx: CaseContext, method: Callable[..., Awaitable[Any]], request: Any, what: str) -> Any:
    return await expect_ok(method(request), what)


async def build_world(ctx: CaseContext) -> World:
    """Provision the case's world over the API and register its removal."""
    if ctx.fixtures.child_safety is not None and ctx.fixtures.child_safety.provisioning == "fixed":
        ctx.skip("the case provisions its own wards, tags, readers and zones (provisioning: api)")
    center = ctx.center()
    base = ctx.fixtures.service_area_location or ctx.fixtures.camera_location
    lat0, lon0 = (base.latitude, base.longitude) if base is not None else DEFAULT_BASE
    lat = lat0 + random.uniform(-0.02, 0.02)
    lon = lon0 + random.uniform(-0.02, 0.02)
    registry: Any = ctx.stub(csg.ChildSafetyServiceStub, OPERATOR)
    guardian_id, contact_id = new_id(ctx, "g"), new_id(ctx, "s")
    gateway = gateway_subject(ctx)
    made: list[str] = []

    async def zone(kind: int, dlat: float, radius: float, **extra: Any) -> cs.Zone:
        z = cs.Zone(kind=kind, display_name="conformance zone", area=circle(lat + dlat, lon, radius), **extra)  # type: ignore[arg-type]
        out: cs.Zone = await create(
            ctx,
            registry.CreateZone,
            cs.CreateZoneRequest(
                parent=center, zone=z, zone_id=new_id(ctx, "z"), request_id=ctx.request_id()
            ),
            "CreateZone",
        )
        made.append(out.name)
        return out

    async def reader(kind: Any, dlat: float, zone_name: str = "") -> cs.Reader:
        r = cs.Reader(
            kind=kind,
            display_name="conformance reader",
            location=point(lat + dlat, lon),
            zone=zone_name,
            gateway=gateway,
            active=True,
        )
        out: cs.Reader = await create(
            ctx,
            registry.CreateReader,
            cs.CreateReaderRequest(
                parent=center, reader=r, reader_id=new_id(ctx, "r"), request_id=ctx.request_id()
            ),
            "CreateReader",
        )
        made.append(out.name)
        return out

    school = await zone(cs.ZONE_KIND_SCHOOL, 0.0, 100, school_contacts=[f"{center}/guardians/{contact_id}"])
    home = await zone(cs.ZONE_KIND_HOME, 0.003, 20)
    academy = await zone(cs.ZONE_KIND_ACADEMY, -0.003, 20)
    danger = await zone(cs.ZONE_KIND_DANGER, 0.006, 30)
    gate = await reader(cs.READER_KIND_SCHOOL_GATE, 0.0, school.name)
    home_reader = await reader(cs.READER_KIND_HOME, 0.003, home.name)
    academy_reader = await reader(cs.READER_KIND_ACADEMY, -0.003, academy.name)
    bell = await reader(cs.READER_KIND_BELL_POLE, 0.0002, school.name)
    street = await reader(cs.READER_KIND_STREET, 0.006)
    ward: cs.Ward = await create(
        ctx,
        registry.CreateWard,
        cs.CreateWardRequest(
            parent=center,
            ward=cs.Ward(
                display_name="하늘",
                guardians=[f"{center}/guardians/{guardian_id}"],
                school_zone=school.name,
                place_zones=[home.name, academy.name],
                active=True,
            ),
            ward_id=new_id(ctx, "w"),
            request_id=ctx.request_id(),
        ),
        "CreateWard",
    )
    made.append(ward.name)
    tag: cs.Tag = await create(
        ctx,
        registry.CreateTag,
        cs.CreateTagRequest(
            parent=center,
            tag=cs.Tag(kind=cs.TAG_KIND_BLE, uid=random_uid(), ward=ward.name, active=True),
            tag_id=new_id(ctx, "t"),
            request_id=ctx.request_id(),
        ),
        "CreateTag",
    )
    made.append(tag.name)

    async def remove() -> None:
        for name in reversed(made):
            collection = name.split("/")[2]
            method = {
                "tags": registry.DeleteTag,
                "wards": registry.DeleteWard,
                "readers": registry.DeleteReader,
                "zones": registry.DeleteZone,
            }[collection]
            request_type = {
                "tags": cs.DeleteTagRequest,
                "wards": cs.DeleteWardRequest,
                "readers": cs.DeleteReaderRequest,
                "zones": cs.DeleteZoneRequest,
            }[collection]
            with contextlib.suppress(grpc.aio.AioRpcError):  # already gone (a case deleted it)
                await method(request_type(name=name, request_id=str(uuid.uuid4())))

    ctx.on_cleanup(remove)
    return World(
        ctx, center, lat, lon, guardian_id, contact_id, school, home, academy, danger,
        gate, home_reader, academy_reader, bell, street, ward, tag,
    )  # fmt: skip


def ack_error(ack: cs.TagEventAck) -> tuple[grpc.StatusCode, str, list[str]]:
    """(code, reason, violation fields) of a REJECTED ack's error."""
    parsed = parse_status_proto(code_of(ack.error), ack.error)
    return parsed.code, parsed.reason, [v.field for v in parsed.field_violations]


def expect_rejected(
    ack: cs.TagEventAck, code: grpc.StatusCode, reason: str, field: str | None = None
) -> None:
    check(
        ack.status == REJECTED,
        f"event {ack.event_id}: expected REJECTED, got {cs.TagEventAckStatus.Name(ack.status)}",
    )
    got_code, got_reason, fields = ack_error(ack)
    check(
        got_code == code and got_reason == reason,
        f"event {ack.event_id}: expected error {code.name}/{reason}, got {got_code.name}/{got_reason}",
    )
    if field is not None:
        check(field in fields, f"event {ack.event_id}: expected a field violation on {field!r}, got {fields}")


# --- registry (§14.3) ---------------------------------------------------------------------------------


@case(
    "TC_CHD_001_SRV",
    title="Create names resources {parent}/{collection}/{id}, ignores the request's name, Get returns them",
    requirements=["CHD-001", "CHD-015"],
    profile=PROFILE,
    kind="positive",
)
async def create_names(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    zone_id = new_id(ctx, "zz")
    zone = cs.Zone(
        name=f"{world.center}/zones/ignored-name",
        kind=cs.ZONE_KIND_DANGER,
        display_name="공사장",
        area=circle(world.lat - 0.006, world.lon, 15),
    )
    created = await expect_ok(
        registry.CreateZone(
            cs.CreateZoneRequest(parent=world.center, zone=zone, zone_id=zone_id, request_id=ctx.request_id())
        )
    )
    ctx.on_cleanup(
        lambda: registry.DeleteZone(cs.DeleteZoneRequest(name=created.name, request_id=str(uuid.uuid4())))
    )
    check(
        created.name == f"{world.center}/zones/{zone_id}", f"CreateZone named it {created.name!r} [CHD-001]"
    )
    h = created.hysteresis
    check(
        h.entry_sightings == 2 and h.entry_dwell.seconds == 60 and h.exit_absence.seconds == 300,
        f"a DANGER zone without hysteresis must come back with 2 / 60 s / 300 s, got {h} [CHD-015]",
    )
    for name, getter, request in (
        (world.ward.name, registry.GetWard, cs.GetWardRequest),
        (world.tag.name, registry.GetTag, cs.GetTagRequest),
        (world.gate.name, registry.GetReader, cs.GetReaderRequest),
        (created.name, registry.GetZone, cs.GetZoneRequest),
    ):
        got = await expect_ok(getter(request(name=name)), f"Get {name}")
        check(got.name == name, f"Get returned {got.name!r} for {name!r} [CHD-001]")
    got_zone = await expect_ok(registry.GetZone(cs.GetZoneRequest(name=created.name)))
    check(got_zone.hysteresis.entry_sightings == 2, "GetZone must fill in the effective hysteresis [CHD-015]")


@case(
    "TC_CHD_002_SRV",
    title="Creating a resource with an id already used fails ALREADY_EXISTS",
    requirements=["CHD-001"],
    profile=PROFILE,
    kind="negative",
)
async def create_duplicate_id(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    again = cs.Zone(kind=cs.ZONE_KIND_HOME, display_name="집", area=circle(world.lat, world.lon, 10))
    await expect_error(
        world.registry().CreateZone(
            cs.CreateZoneRequest(
                parent=world.center,
                zone=again,
                zone_id=world.home.name.rsplit("/", 1)[-1],
                request_id=ctx.request_id(),
            )
        ),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="ALREADY_EXISTS",
    )


@case(
    "TC_CHD_003_SRV",
    title="A ward's display_name that is empty, too long or holds 6 digits is INVALID_FIELD",
    requirements=["CHD-002", "CHD-003"],
    profile=PROFILE,
    kind="negative",
)
async def ward_display_name(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    for bad in ("", "가" * 21, "민준 130512"):
        ward = cs.Ward(
            display_name=bad, guardians=[world.guardian], school_zone=world.school.name, active=True
        )
        await expect_error(
            world.registry().CreateWard(
                cs.CreateWardRequest(
                    parent=world.center, ward=ward, ward_id=new_id(ctx, "w"), request_id=ctx.request_id()
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            field="ward.display_name",
            what=f"CreateWard with display_name {bad!r}",
        )


@case(
    "TC_CHD_004_SRV",
    title=(
        "Wrong references in a ward (other center, reserved id, "
        "missing zone, wrong zone kind) are INVALID_FIELD"
    ),
    requirements=["CHD-004", "CHD-016"],
    profile=PROFILE,
    kind="negative",
)
async def ward_references(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    c = world.center
    missing = f"{c}/zones/{new_id(ctx, 'missing')}"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("ward.school_zone", {"school_zone": world.home.name}),
        ("ward.school_zone", {"school_zone": missing}),
        ("ward.school_zone", {"school_zone": "centers/conformance-elsewhere/zones/school"}),
        ("ward.guardians[0]", {"guardians": ["centers/conformance-elsewhere/guardians/someone"]}),
        ("ward.guardians[0]", {"guardians": [f"{c}/guardians/operators"]}),
        ("ward.place_zones[0]", {"place_zones": [world.danger.name]}),
        (
            "ward.expected_arrivals[0].zone",
            {
                "expected_arrivals": [
                    cs.ExpectedArrival(
                        zone=world.home.name,
                        window=cs.LocalTimeWindow(
                            weekdays=[1], start_local_time="08:00", end_local_time="08:40"
                        ),
                    )
                ],
                "place_zones": [world.home.name],
            },
        ),
    ]
    for field, override in cases:
        # The referencing field, or the list it is in (a rule on the whole list names the list).
        fields: dict[str, Any] = {
            "display_name": "하늘",
            "guardians": [world.guardian],
            "school_zone": world.school.name,
            "active": True,
        }
        fields.update(override)
        error = await expect_error(
            world.registry().CreateWard(
                cs.CreateWardRequest(
                    parent=c, ward=cs.Ward(**fields), ward_id=new_id(ctx, "w"), request_id=ctx.request_id()
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            what=f"CreateWard with {override}",
        )
        named = [v.field for v in error.field_violations]
        check(
            any(f == field or (f == field.split("[")[0] and "[" in field) for f in named),
            f"CreateWard with {override}: expected a field violation on {field!r}, got {named} [CHD-004]",
        )


@case(
    "TC_CHD_005_SRV",
    title="A tag uid not in canonical form is INVALID_FIELD; a uid already registered is ALREADY_EXISTS",
    requirements=["CHD-005"],
    profile=PROFILE,
    kind="negative",
)
async def tag_uid(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    for kind, uid in (
        (cs.TAG_KIND_BLE, "3f2a9c01aa"),
        (cs.TAG_KIND_RFID, "ABC"),
        (cs.TAG_KIND_USIM_DEVICE, "01012345678"),
    ):
        await expect_error(
            registry.CreateTag(
                cs.CreateTagRequest(
                    parent=world.center,
                    tag=cs.Tag(kind=kind, uid=uid, active=True),
                    tag_id=new_id(ctx, "t"),
                    request_id=ctx.request_id(),
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            what=f"CreateTag with uid {uid!r}",
        )
    await expect_error(
        registry.CreateTag(
            cs.CreateTagRequest(
                parent=world.center,
                tag=cs.Tag(kind=cs.TAG_KIND_BLE, uid=world.tag.uid, active=True),
                tag_id=new_id(ctx, "t"),
                request_id=ctx.request_id(),
            )
        ),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="ALREADY_EXISTS",
        what="CreateTag with a uid already registered",
    )


@case(
    "TC_CHD_006_SRV",
    title="An update_mask naming an immutable field (Tag uid/kind, Reader kind, Zone kind) is INVALID_FIELD",
    requirements=["CHD-006"],
    profile=PROFILE,
    kind="negative",
)
async def immutable_fields(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    changed_tag = cs.Tag()
    changed_tag.CopyFrom(world.tag)
    changed_tag.uid = random_uid()
    await expect_error(
        registry.UpdateTag(
            cs.UpdateTagRequest(
                tag=changed_tag,
                update_mask=field_mask_pb2.FieldMask(paths=["uid"]),
                request_id=ctx.request_id(),
            )
        ),
        code=INVALID,
        reason="INVALID_FIELD",
        field="update_mask",
    )
    zone = cs.Zone()
    zone.CopyFrom(world.home)
    zone.kind = cs.ZONE_KIND_ACADEMY
    await expect_error(
        registry.UpdateZone(
            cs.UpdateZoneRequest(
                zone=zone, update_mask=field_mask_pb2.FieldMask(paths=["kind"]), request_id=ctx.request_id()
            )
        ),
        code=INVALID,
        reason="INVALID_FIELD",
        field="update_mask",
    )
    reader = cs.Reader()
    reader.CopyFrom(world.street)
    reader.kind = cs.READER_KIND_BUS
    await expect_error(
        registry.UpdateReader(
            cs.UpdateReaderRequest(
                reader=reader,
                update_mask=field_mask_pb2.FieldMask(paths=["kind"]),
                request_id=ctx.request_id(),
            )
        ),
        code=INVALID,
        reason="INVALID_FIELD",
        field="update_mask",
    )
    after = await expect_ok(registry.GetTag(cs.GetTagRequest(name=world.tag.name)))
    check(after.uid == world.tag.uid, "a refused update must leave the tag unchanged [CHD-006]")


@case(
    "TC_CHD_007_SRV",
    title=(
        "A SCHOOL_GATE reader without a zone or with a zone of another kind is INVALID_FIELD on reader.zone"
    ),
    requirements=["CHD-007"],
    profile=PROFILE,
    kind="negative",
)
async def reader_zone(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    for zone in ("", world.home.name):
        reader = cs.Reader(
            kind=cs.READER_KIND_SCHOOL_GATE,
            location=point(world.lat, world.lon),
            zone=zone,
            gateway=gateway_subject(ctx),
            active=True,
        )
        await expect_error(
            world.registry().CreateReader(
                cs.CreateReaderRequest(
                    parent=world.center,
                    reader=reader,
                    reader_id=new_id(ctx, "r"),
                    request_id=ctx.request_id(),
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            field="reader.zone",
            what=f"CreateReader SCHOOL_GATE with zone {zone!r}",
        )


@case(
    "TC_CHD_008_SRV",
    title=(
        "Hysteresis on a non-DANGER zone, contacts on a HOME zone, or a "
        "window ending before it starts are INVALID_FIELD"
    ),
    requirements=["CHD-008"],
    profile=PROFILE,
    kind="negative",
)
async def zone_rules(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    area = circle(world.lat, world.lon, 10)
    bad = [
        cs.Zone(
            kind=cs.ZONE_KIND_SCHOOL,
            display_name="x",
            area=area,
            hysteresis=cs.ZoneHysteresis(entry_sightings=3),
        ),
        cs.Zone(kind=cs.ZONE_KIND_HOME, display_name="x", area=area, school_contacts=[world.contact]),
        cs.Zone(
            kind=cs.ZONE_KIND_DANGER,
            display_name="x",
            area=area,
            active_windows=[
                cs.LocalTimeWindow(weekdays=[1], start_local_time="15:00", end_local_time="14:00")
            ],
        ),
    ]
    for zone in bad:
        await expect_error(
            world.registry().CreateZone(
                cs.CreateZoneRequest(
                    parent=world.center, zone=zone, zone_id=new_id(ctx, "z"), request_id=ctx.request_id()
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            what=f"CreateZone {cs.ZoneKind.Name(zone.kind)}",
        )


@case(
    "TC_CHD_009_SRV",
    title=(
        "Update changes exactly the masked fields with a new "
        "update_time; an empty or unknown mask is INVALID_FIELD"
    ),
    requirements=["CHD-009"],
    profile=PROFILE,
    kind="positive",
)
async def update_mask(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    change = cs.Ward()
    change.CopyFrom(world.ward)
    change.display_name = "바다"
    change.active = False  # not in the mask: must stay True
    updated = await expect_ok(
        registry.UpdateWard(
            cs.UpdateWardRequest(
                ward=change,
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
                request_id=ctx.request_id(),
            )
        )
    )
    check(updated.display_name == "바다", "the masked field display_name did not change [CHD-009]")
    check(updated.active, "active changed although it was not in update_mask [CHD-009]")
    check(
        updated.update_time.ToDatetime() > world.ward.update_time.ToDatetime(),
        "the updated ward must carry a new update_time [CHD-009]",
    )
    for paths in ([], ["no_such_field"]):
        await expect_error(
            registry.UpdateWard(
                cs.UpdateWardRequest(
                    ward=change,
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                    request_id=ctx.request_id(),
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            field="update_mask" if paths else None,
            what=f"UpdateWard with update_mask {paths}",
        )


@case(
    "TC_CHD_010_SRV",
    title="Deleting a zone a ward or reader refers to fails FAILED_PRECONDITION / RESOURCE_IN_USE",
    requirements=["CHD-010"],
    profile=PROFILE,
    kind="negative",
)
async def delete_zone_in_use(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    for zone in (world.school, world.home):
        await expect_error(
            registry.DeleteZone(cs.DeleteZoneRequest(name=zone.name, request_id=ctx.request_id())),
            code=grpc.StatusCode.FAILED_PRECONDITION,
            reason="RESOURCE_IN_USE",
            what=f"DeleteZone {zone.name}",
        )
    await expect_ok(
        registry.GetZone(cs.GetZoneRequest(name=world.school.name)), "GetZone after a refused delete"
    )


@case(
    "TC_CHD_011_SRV",
    title=(
        "After DeleteWard the ward is NOT_FOUND (also location and "
        "track) and its tags are untied and inactive"
    ),
    requirements=["CHD-011"],
    profile=PROFILE,
    kind="positive",
)
async def delete_ward(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    await world.submit(world.sighting(world.street))
    await expect_ok(
        registry.DeleteWard(cs.DeleteWardRequest(name=world.ward.name, request_id=ctx.request_id()))
    )
    await expect_error(
        registry.GetWard(cs.GetWardRequest(name=world.ward.name)), code=NOT_FOUND, reason="RESOURCE_NOT_FOUND"
    )
    await expect_error(
        world.guardians().GetWardLocation(gd.GetWardLocationRequest(ward=world.ward.name)),
        code=NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
    )
    track = gd.ListWardTrackRequest(ward=world.ward.name)
    track.start_time.FromDatetime(now() - timedelta(hours=1))
    track.end_time.FromDatetime(now() + timedelta(minutes=1))
    await expect_error(world.guardians().ListWardTrack(track), code=NOT_FOUND, reason="RESOURCE_NOT_FOUND")
    tag = await expect_ok(registry.GetTag(cs.GetTagRequest(name=world.tag.name)))
    check(
        not tag.ward and not tag.active,
        f"the ward's tag must be untied and inactive, got ward={tag.ward!r} active={tag.active}",
    )


@case(
    "TC_CHD_012_SRV",
    title=(
        "Another guardian gets NOT_OWNER for the ward, its tag and "
        "its HOME zone and does not see them in lists"
    ),
    requirements=["CHD-012", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def other_guardian_registry(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    other = guardian_token(ctx, new_id(ctx, "other"))
    mine = world.registry("GUARDIAN", token=world.guardian_token())
    theirs = world.registry("GUARDIAN", token=other)
    await expect_ok(mine.GetWard(cs.GetWardRequest(name=world.ward.name)), "GetWard by the ward's guardian")
    await expect_ok(
        mine.GetZone(cs.GetZoneRequest(name=world.home.name)), "GetZone HOME by the ward's guardian"
    )
    for call in (
        theirs.GetWard(cs.GetWardRequest(name=world.ward.name)),
        theirs.GetTag(cs.GetTagRequest(name=world.tag.name)),
        theirs.GetZone(cs.GetZoneRequest(name=world.home.name)),
    ):
        await expect_error(call, code=DENIED, reason="NOT_OWNER")
    wards = await expect_ok(theirs.ListWards(cs.ListWardsRequest(parent=world.center, page_size=1000)))
    check(
        world.ward.name not in [w.name for w in wards.wards],
        "ListWards shows another guardian's ward [CHD-012]",
    )
    zones = await expect_ok(
        theirs.ListZones(cs.ListZonesRequest(parent=world.center, kind=cs.ZONE_KIND_HOME, page_size=1000))
    )
    check(
        world.home.name not in [z.name for z in zones.zones],
        "ListZones shows another ward's HOME zone [CHD-012]",
    )
    await expect_ok(
        theirs.GetZone(cs.GetZoneRequest(name=world.school.name)), "GetZone SCHOOL by another guardian"
    )


@case(
    "TC_CHD_013_SRV",
    title="A gateway gets NOT_OWNER for another gateway's reader and lists only its own readers",
    requirements=["CHD-013", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def other_gateway_reader(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    other = ctx.tokens.mint(GATEWAY, claims={"sub": f"gateways/{new_id(ctx, 'gw')}"})
    theirs = world.registry(GATEWAY, token=other)
    await expect_error(
        theirs.GetReader(cs.GetReaderRequest(name=world.gate.name)), code=DENIED, reason="NOT_OWNER"
    )
    listed = await expect_ok(
        theirs.ListReaders(
            cs.ListReadersRequest(parent=world.center, gateway=gateway_subject(ctx), page_size=1000)
        )
    )
    check(
        not listed.readers, "ListReaders returned another gateway's readers for its gateway filter [CHD-013]"
    )
    mine = await expect_ok(
        world.registry(GATEWAY).ListReaders(cs.ListReadersRequest(parent=world.center, page_size=1000))
    )
    names = {r.name for r in mine.readers}
    check(world.gate.name in names, "ListReaders by the owning gateway lacks its reader [CHD-013]")
    check(
        all(r.gateway == gateway_subject(ctx) for r in mine.readers),
        "ListReaders returned readers of other gateways",
    )


@case(
    "TC_CHD_014_SRV",
    title="A guardian removed from a ward gets NOT_OWNER at once for the ward, its location and its track",
    requirements=["CHD-014", "GRD-014"],
    profile=PROFILE,
    kind="negative",
)
async def removed_guardian(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    second_id = new_id(ctx, "g2")
    change = cs.Ward()
    change.CopyFrom(world.ward)
    change.guardians.append(f"{world.center}/guardians/{second_id}")
    mask = field_mask_pb2.FieldMask(paths=["guardians"])
    registry = world.registry()
    await expect_ok(
        registry.UpdateWard(cs.UpdateWardRequest(ward=change, update_mask=mask, request_id=ctx.request_id()))
    )
    second = guardian_token(ctx, second_id)
    await expect_ok(
        world.registry("GUARDIAN", token=second).GetWard(cs.GetWardRequest(name=world.ward.name)),
        "GetWard while a guardian",
    )
    del change.guardians[-1]
    await expect_ok(
        registry.UpdateWard(cs.UpdateWardRequest(ward=change, update_mask=mask, request_id=ctx.request_id()))
    )
    await expect_error(
        world.registry("GUARDIAN", token=second).GetWard(cs.GetWardRequest(name=world.ward.name)),
        code=DENIED,
        reason="NOT_OWNER",
    )
    await expect_error(
        world.guardians(second).GetWardLocation(gd.GetWardLocationRequest(ward=world.ward.name)),
        code=DENIED,
        reason="NOT_OWNER",
    )


@case(
    "TC_CHD_015_SRV",
    title=(
        "Registry roles: APP_USER, READER_GATEWAY and GUARDIAN may "
        "not create; POLICE_OFFICER may not read wards"
    ),
    requirements=["SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def registry_roles(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    ward = cs.Ward(
        display_name="하늘", guardians=[world.guardian], school_zone=world.school.name, active=True
    )
    request = cs.CreateWardRequest(
        parent=world.center, ward=ward, ward_id=new_id(ctx, "w"), request_id=ctx.request_id()
    )
    for role, token in (("APP_USER", None), (GATEWAY, None), ("GUARDIAN", world.guardian_token())):
        await expect_error(
            world.registry(role, token=token).CreateWard(request),
            code=DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"CreateWard as {role}",
        )
    await expect_error(
        world.registry("POLICE_OFFICER").GetWard(cs.GetWardRequest(name=world.ward.name)),
        code=DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="GetWard as POLICE_OFFICER",
    )


@case(
    "TC_CHD_016_SRV",
    title=(
        "CreateWard is idempotent: a retry returns the first ward, another "
        "payload with the request_id is REQUEST_ID_REUSED"
    ),
    requirements=["IDM-001", "IDM-002", "IDM-003"],
    profile=PROFILE,
    kind="negative",
)
async def ward_idempotency(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    ward = cs.Ward(
        display_name="구름", guardians=[world.guardian], school_zone=world.school.name, active=True
    )
    request = cs.CreateWardRequest(parent=world.center, ward=ward, request_id=ctx.request_id())
    first = await expect_ok(registry.CreateWard(request))
    ctx.on_cleanup(
        lambda: registry.DeleteWard(cs.DeleteWardRequest(name=first.name, request_id=str(uuid.uuid4())))
    )
    again = await expect_ok(registry.CreateWard(request), "the retried CreateWard")
    check(
        again.name == first.name, f"the retry created another ward ({again.name} vs {first.name}) [IDM-002]"
    )
    request.ward.display_name = "별"
    await expect_error(
        registry.CreateWard(request), code=grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED"
    )
    request.request_id = "not-a-uuid"
    await expect_error(registry.CreateWard(request), code=INVALID, reason="INVALID_FIELD", field="request_id")


# --- tag events (§14.4) -------------------------------------------------------------------------------


@case(
    "TC_TAG_001_SRV",
    title=(
        "IngestTagEvents and SubmitTagEvents acknowledge every event "
        "once, by event_id, and keep the stream open"
    ),
    requirements=["TAG-001", "TAG-008", "TAG-009"],
    profile=PROFILE,
    kind="positive",
)
async def ingest_and_submit(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    acks = await world.submit(world.sighting(world.street), world.sighting(world.street))
    check(all(a.status == ACCEPTED for a in acks), f"SubmitTagEvents: expected ACCEPTED, got {acks}")
    events = [world.sighting(world.street, now() - timedelta(seconds=1)) for _ in range(3)]

    async def requests() -> Any:
        for e in events:
            yield cs.IngestTagEventsRequest(event=e)

    call = world.events().IngestTagEvents(requests())
    received = await ctx.read_stream(call, len(events), wait_s=10)
    ids = sorted(a.event_id for a in received)
    check(
        ids == sorted(e.event_id for e in events),
        f"IngestTagEvents acked {ids}, expected one ack per event [TAG-008]",
    )
    check(
        all(a.status == ACCEPTED for a in received),
        f"IngestTagEvents: expected ACCEPTED acks, got {received}",
    )


@case(
    "TC_TAG_002_SRV",
    title="A repeated event (same event_id and content) is DUPLICATE on both rpcs and adds no track point",
    requirements=["TAG-003", "TAG-001"],
    profile=PROFILE,
    kind="negative",
)
async def duplicate_event(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    event = world.sighting(world.street)
    (first,) = await world.submit(event)
    check(first.status == ACCEPTED, f"first sending: expected ACCEPTED, got {first}")
    (second,) = await world.submit(event)
    check(
        second.status == DUPLICATE, f"repeat over SubmitTagEvents: expected DUPLICATE, got {second} [TAG-003]"
    )

    async def requests() -> Any:
        yield cs.IngestTagEventsRequest(event=event)

    (streamed,) = await ctx.read_stream(world.events().IngestTagEvents(requests()), 1) or [cs.TagEventAck()]
    check(
        streamed.status == DUPLICATE,
        f"repeat over IngestTagEvents: expected DUPLICATE, got {streamed} [TAG-001]",
    )
    track = gd.ListWardTrackRequest(ward=world.ward.name)
    track.start_time.FromDatetime(now() - timedelta(hours=1))
    track.end_time.FromDatetime(now() + timedelta(minutes=5))
    points = await expect_ok(world.guardians().ListWardTrack(track))
    check(
        len(points.track_points) == 1,
        f"one sighting sent three times must give one track point, got {len(points.track_points)}",
    )


@case(
    "TC_TAG_003_SRV",
    title=(
        "An event reusing a stored event_id with other content is REJECTED ALREADY_EXISTS / REQUEST_ID_REUSED"
    ),
    requirements=["TAG-004"],
    profile=PROFILE,
    kind="negative",
)
async def reused_event_id(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    event = world.sighting(world.street)
    await world.submit(event)
    changed = cs.TagEvent()
    changed.CopyFrom(event)
    changed.sighting.rssi_dbm = -90
    (ack,) = await world.submit(changed)
    expect_rejected(ack, grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    (again,) = await world.submit(event)
    check(
        again.status == DUPLICATE, "the stored event must stay as it was: its repeat is DUPLICATE [TAG-004]"
    )


@case(
    "TC_TAG_004_SRV",
    title="An observed_time more than 60 s ahead or 7 days old is REJECTED INVALID_FIELD on observed_time",
    requirements=["TAG-005"],
    profile=PROFILE,
    kind="negative",
)
async def observed_time_bounds(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    ahead = world.sighting(world.street, now() + timedelta(minutes=5))
    old = world.sighting(world.street, now() - timedelta(days=8))
    for ack in await world.submit(ahead, old):
        expect_rejected(ack, INVALID, "INVALID_FIELD", "observed_time")


@case(
    "TC_TAG_005_SRV",
    title=(
        "Unknown reader NOT_FOUND, another gateway's reader NOT_OWNER, "
        "NETWORK reader without location INVALID_FIELD"
    ),
    requirements=["TAG-006", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def reader_checks(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    unknown = cs.Reader(name=f"{world.center}/readers/{new_id(ctx, 'nope')}")
    network: cs.Reader = await expect_ok(
        world.registry().CreateReader(
            cs.CreateReaderRequest(
                parent=world.center,
                reader=cs.Reader(
                    kind=cs.READER_KIND_NETWORK,
                    location=point(world.lat, world.lon),
                    gateway=gateway_subject(ctx),
                    active=True,
                ),
                reader_id=new_id(ctx, "net"),
                request_id=ctx.request_id(),
            )
        )
    )
    ctx.on_cleanup(
        lambda: world.registry().DeleteReader(
            cs.DeleteReaderRequest(name=network.name, request_id=str(uuid.uuid4()))
        )
    )
    acks = await world.submit(world.sighting(unknown), world.sighting(network))
    expect_rejected(acks[0], NOT_FOUND, "RESOURCE_NOT_FOUND")
    expect_rejected(acks[1], INVALID, "INVALID_FIELD", "location")
    other = ctx.tokens.mint(GATEWAY, claims={"sub": f"gateways/{new_id(ctx, 'gw')}"})
    (ack,) = await world.submit(world.sighting(world.street), token=other)
    expect_rejected(ack, DENIED, "NOT_OWNER")


@case(
    "TC_TAG_006_SRV",
    title=(
        "An event breaking TagEvent's constraints is REJECTED with a field violation and the stream goes on"
    ),
    requirements=["TAG-007", "TAG-008"],
    profile=PROFILE,
    kind="negative",
)
async def invalid_event_in_stream(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    bell_with_tag = world.event(world.bell, cs.TAG_EVENT_KIND_BELL_PRESS, uid=world.tag.uid)
    no_details = world.sighting(world.street)
    no_details.ClearField("sighting")
    bad_rssi = world.sighting(world.street)
    bad_rssi.sighting.rssi_dbm = 99
    good = world.sighting(world.street)
    events = [bell_with_tag, no_details, bad_rssi, good]

    async def requests() -> Any:
        for e in events:
            yield cs.IngestTagEventsRequest(event=e)

    acks = {
        a.event_id: a
        for a in await ctx.read_stream(world.events().IngestTagEvents(requests()), len(events), wait_s=10)
    }
    check(len(acks) == len(events), f"expected {len(events)} acks on the stream, got {len(acks)} [TAG-008]")
    for e in events[:2]:
        expect_rejected(acks[e.event_id], INVALID, "INVALID_FIELD")
    expect_rejected(acks[bad_rssi.event_id], INVALID, "INVALID_FIELD", "sighting.rssi_dbm")
    check(
        acks[good.event_id].status == ACCEPTED,
        "the valid event after rejected ones must be ACCEPTED [TAG-007]",
    )


@case(
    "TC_TAG_007_SRV",
    title=(
        "Sightings of unknown or inactive tags are REJECTED NOT_FOUND; "
        "a BUTTON_PRESS of an inactive tag is ACCEPTED"
    ),
    requirements=["TAG-010"],
    profile=PROFILE,
    kind="negative",
)
async def unknown_and_inactive_tags(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    (ack,) = await world.submit(world.sighting(world.street, uid=random_uid()))
    expect_rejected(ack, NOT_FOUND, "RESOURCE_NOT_FOUND")
    off = cs.Tag()
    off.CopyFrom(world.tag)
    off.active = False
    await expect_ok(
        world.registry().UpdateTag(
            cs.UpdateTagRequest(
                tag=off, update_mask=field_mask_pb2.FieldMask(paths=["active"]), request_id=ctx.request_id()
            )
        )
    )
    low = world.event(
        world.street,
        cs.TAG_EVENT_KIND_LOW_BATTERY,
        uid=world.tag.uid,
        low_battery=cs.LowBatteryDetails(battery_percent=5),
    )
    sighting, low_ack, button = await world.submit(
        world.sighting(world.street),
        low,
        world.event(world.street, cs.TAG_EVENT_KIND_BUTTON_PRESS, uid=world.tag.uid),
    )
    expect_rejected(sighting, NOT_FOUND, "RESOURCE_NOT_FOUND")
    expect_rejected(low_ack, NOT_FOUND, "RESOURCE_NOT_FOUND")
    check(
        button.status == ACCEPTED,
        f"a BUTTON_PRESS of a registered inactive tag must be ACCEPTED, got {button}",
    )


@case(
    "TC_TAG_008_SRV",
    title="INBOUND/OUTBOUND sightings at the school gate derive ARRIVED_SCHOOL and LEFT_SCHOOL once, as INFO",
    requirements=["TAG-011", "GRD-001", "GRD-002", "TAG-018"],
    profile=PROFILE,
    kind="positive",
)
async def school_arrival(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    t = now() - timedelta(seconds=30)
    inbound = cs.SIGHTING_DIRECTION_INBOUND
    await world.submit(
        world.sighting(world.gate, t, inbound), world.sighting(world.gate, t + timedelta(seconds=5), inbound)
    )
    arrived = await world.wait_for(cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL)
    check(
        len(arrived) == 1,
        f"expected one ARRIVED_SCHOOL for two INBOUND sightings, got {len(arrived)} [TAG-011]",
    )
    n = arrived[0]
    check(
        n.severity == gd.NOTIFICATION_SEVERITY_INFO and not n.HasField("ack_deadline"),
        "ARRIVED_SCHOOL is INFO without ack_deadline [GRD-002]",
    )
    check(
        n.recipient_level == gd.ESCALATION_LEVEL_GUARDIAN
        and n.escalation_level == gd.ESCALATION_LEVEL_GUARDIAN,
        "levels must be GUARDIAN [GRD-001]",
    )
    check(
        n.ward == world.ward.name and n.mode == ctx.mode,
        "the notification must name the ward and carry the event's mode [TAG-018]",
    )
    await world.submit(world.sighting(world.gate, t + timedelta(seconds=20), cs.SIGHTING_DIRECTION_OUTBOUND))
    left = await world.wait_for(cs.DERIVED_EVENT_KIND_LEFT_SCHOOL)
    check(len(left) == 1, f"expected one LEFT_SCHOOL for an OUTBOUND sighting, got {len(left)} [TAG-011]")


@case(
    "TC_TAG_009_SRV",
    title="Direction-less sightings toggle presence, except within 120 s of the previous one at the zone",
    requirements=["TAG-012"],
    profile=PROFILE,
    kind="positive",
)
async def toggle_presence(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    t = now() - timedelta(minutes=4)
    await world.submit(world.sighting(world.academy_reader, t))
    await world.submit(world.sighting(world.academy_reader, t + timedelta(seconds=30)))
    await world.submit(world.sighting(world.academy_reader, t + timedelta(seconds=200)))
    came = await world.wait_for(cs.DERIVED_EVENT_KIND_ACADEMY_IN)
    went = await world.wait_for(cs.DERIVED_EVENT_KIND_ACADEMY_OUT)
    check(len(came) == 1, f"expected one ACADEMY_IN, got {len(came)} [TAG-012]")
    check(
        len(went) == 1,
        f"expected one ACADEMY_OUT (the sighting 30 s later changes nothing), got {len(went)} [TAG-012]",
    )


@case(
    "TC_TAG_010_SRV",
    title="Two in-zone sightings derive ENTERED_DANGER_ZONE once, EMERGENCY with an ack_deadline",
    requirements=["TAG-013", "GRD-002", "CHD-015"],
    profile=PROFILE,
    kind="positive",
)
async def danger_zone_entry(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    t = now() - timedelta(seconds=20)
    await world.submit(world.sighting(world.street, t))
    early = await world.wait_for(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE, wait_s=2)
    check(not early, "one in-zone sighting must not reach entry_sightings 2 [TAG-013]")
    await world.submit(world.sighting(world.street, t + timedelta(seconds=5)))
    entered = await world.wait_for(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE)
    check(
        len(entered) == 1,
        f"expected ENTERED_DANGER_ZONE after the second sighting, got {len(entered)} [TAG-013]",
    )
    n = entered[0]
    check(n.severity == gd.NOTIFICATION_SEVERITY_EMERGENCY, "ENTERED_DANGER_ZONE is EMERGENCY [GRD-002]")
    check(n.zone == world.danger.name, f"the notification must name the zone, got {n.zone!r}")
    check(
        n.HasField("ack_deadline") or n.HasField("acknowledged_by"),
        "an EMERGENCY notification needs ack_deadline [GRD-002]",
    )
    await world.submit(world.sighting(world.street, t + timedelta(seconds=10)))
    again = await world.wait_for(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE, count=2, wait_s=2)
    check(len(again) == 1, "ENTERED_DANGER_ZONE must not be derived again before LEFT_DANGER_ZONE [TAG-013]")


@case(
    "TC_TAG_011_SRV",
    title="A sighting older than one already evaluated enters the track but derives nothing",
    requirements=["TAG-021"],
    profile=PROFILE,
    kind="negative",
)
async def out_of_order(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    t = now() - timedelta(seconds=60)
    await world.submit(world.sighting(world.home_reader, t, cs.SIGHTING_DIRECTION_OUTBOUND))
    await world.wait_for(cs.DERIVED_EVENT_KIND_HOME_OUT)
    await world.submit(world.sighting(world.gate, t - timedelta(seconds=30), cs.SIGHTING_DIRECTION_INBOUND))
    late = await world.wait_for(cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL, wait_s=3)
    check(
        not late, "a sighting observed before one already evaluated must not derive ARRIVED_SCHOOL [TAG-021]"
    )
    track = gd.ListWardTrackRequest(ward=world.ward.name)
    track.start_time.FromDatetime(now() - timedelta(hours=1))
    track.end_time.FromDatetime(now() + timedelta(minutes=5))
    points = await expect_ok(world.guardians().ListWardTrack(track))
    check(
        len(points.track_points) == 2,
        f"both sightings belong in the track, got {len(points.track_points)} [TAG-021]",
    )


@case(
    "TC_TAG_012_SRV",
    title="LOW_BATTERY sets the tag's battery and derives LOW_BATTERY once per 24 hours",
    requirements=["TAG-019"],
    profile=PROFILE,
    kind="positive",
)
async def low_battery(ctx: CaseContext) -> None:
    world = await build_world(ctx)

    def low(percent: int) -> cs.TagEvent:
        return world.event(
            world.street,
            cs.TAG_EVENT_KIND_LOW_BATTERY,
            uid=world.tag.uid,
            low_battery=cs.LowBatteryDetails(battery_percent=percent),
        )

    await world.submit(low(9))
    found = await world.wait_for(cs.DERIVED_EVENT_KIND_LOW_BATTERY)
    check(len(found) == 1, f"expected a LOW_BATTERY notification, got {len(found)} [TAG-019]")
    await world.submit(low(7))
    tag = await expect_ok(world.registry().GetTag(cs.GetTagRequest(name=world.tag.name)))
    check(
        tag.battery_percent == 7,
        f"the tag's battery_percent must be the reported 7, got {tag.battery_percent} [TAG-019]",
    )
    again = await world.wait_for(cs.DERIVED_EVENT_KIND_LOW_BATTERY, count=2, wait_s=2)
    check(len(again) == 1, "a second LOW_BATTERY within 24 hours must not derive another [TAG-019]")


@case(
    "TC_TAG_013_SRV",
    title="A BUTTON_PRESS derives SOS for the ward's guardians at once, EMERGENCY, in the event's mode",
    requirements=["TAG-016", "TAG-018", "GRD-001"],
    profile=PROFILE,
    kind="positive",
)
async def button_press(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    (ack,) = await world.submit(world.event(world.street, cs.TAG_EVENT_KIND_BUTTON_PRESS, uid=world.tag.uid))
    check(ack.status == ACCEPTED, f"BUTTON_PRESS: expected ACCEPTED, got {ack}")
    sos = await world.wait_for(cs.DERIVED_EVENT_KIND_SOS)
    check(len(sos) == 1, f"expected one SOS notification within 5 s, got {len(sos)} [TAG-016]")
    check(sos[0].severity == gd.NOTIFICATION_SEVERITY_EMERGENCY, "SOS is EMERGENCY [GRD-002]")
    check(sos[0].mode == ctx.mode, "the SOS must carry the event's TEST mode [TAG-018]")


@case(
    "TC_TAG_014_SRV",
    title="A BELL_PRESS notifies the bell zone's school contacts at the SCHOOL rung",
    requirements=["TAG-017", "TAG-018"],
    profile=PROFILE,
    kind="positive",
)
async def bell_press(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    (ack,) = await world.submit(world.event(world.bell, cs.TAG_EVENT_KIND_BELL_PRESS))
    check(ack.status == ACCEPTED, f"BELL_PRESS: expected ACCEPTED, got {ack}")
    bells = await world.wait_for(
        cs.DERIVED_EVENT_KIND_BELL, token=world.contact_token(), recipient=world.contact
    )
    check(len(bells) == 1, f"the school contact must get one BELL notification, got {len(bells)} [TAG-017]")
    check(
        bells[0].recipient_level == gd.ESCALATION_LEVEL_SCHOOL,
        "the BELL copy of a school contact is at the SCHOOL rung",
    )
    check(
        bells[0].mode == ctx.mode and bells[0].reader == world.bell.name,
        "the BELL names its reader and carries TEST mode",
    )


@case(
    "TC_TAG_015_SRV",
    title=(
        "Only READER_GATEWAY may send tag events (GUARDIAN, CENTER_OPERATOR and APP_USER: ROLE_NOT_PERMITTED)"
    ),
    requirements=["SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def ingest_roles(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    request = cs.SubmitTagEventsRequest(events=[world.sighting(world.street)], request_id=ctx.request_id())
    for role, token in (("GUARDIAN", world.guardian_token()), (OPERATOR, None), ("APP_USER", None)):
        await expect_error(
            world.ctx.stub(csg.TagEventServiceStub, role, token=token).SubmitTagEvents(request),
            code=DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"SubmitTagEvents as {role}",
        )


@case(
    "TC_TAG_016_SRV",
    title=(
        "SubmitTagEvents without events, with more than 500 or with a "
        "bad request_id fails as a whole INVALID_FIELD"
    ),
    requirements=["TAG-009", "IDM-001"],
    profile=PROFILE,
    kind="negative",
)
async def submit_bounds(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    stub = world.events()
    await expect_error(
        stub.SubmitTagEvents(cs.SubmitTagEventsRequest(request_id=ctx.request_id())),
        code=INVALID,
        reason="INVALID_FIELD",
        field="events",
    )
    many = [world.sighting(world.street) for _ in range(501)]
    await expect_error(
        stub.SubmitTagEvents(cs.SubmitTagEventsRequest(events=many, request_id=ctx.request_id())),
        code=INVALID,
        reason="INVALID_FIELD",
        field="events",
    )
    await expect_error(
        stub.SubmitTagEvents(cs.SubmitTagEventsRequest(events=many[:1], request_id="1234")),
        code=INVALID,
        reason="INVALID_FIELD",
        field="request_id",
    )


@case(
    "TC_TAG_017_SRV",
    title=(
        "A retried SubmitTagEvents returns its first acks; the same "
        "events under a new request_id are DUPLICATE"
    ),
    requirements=["IDM-002", "TAG-003"],
    profile=PROFILE,
    kind="positive",
)
async def submit_retry(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    request = cs.SubmitTagEventsRequest(events=[world.sighting(world.street)], request_id=ctx.request_id())
    stub = world.events()
    first = await expect_ok(stub.SubmitTagEvents(request))
    retry = await expect_ok(stub.SubmitTagEvents(request))
    check(
        list(first.acks) == list(retry.acks),
        f"a retry must return the first acks: {first.acks} vs {retry.acks} [IDM-002]",
    )
    check(first.acks[0].status == ACCEPTED, f"expected ACCEPTED, got {first.acks[0]}")
    request.request_id = ctx.request_id()
    fresh = await expect_ok(stub.SubmitTagEvents(request))
    check(
        fresh.acks[0].status == DUPLICATE,
        f"the same event under a new request_id must be DUPLICATE, got {fresh.acks[0]}",
    )


@case(
    "TC_CHD_017_SRV",
    title="A zone without polygon or circle, a circle of radius 0, a 9-digit legal_dong_code: INVALID_FIELD",
    requirements=["LOC-007", "LOC-008"],
    profile=PROFILE,
    kind="negative",
)
async def area_and_address(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    registry = world.registry()
    for area in (common_pb2.Area(), circle(world.lat, world.lon, 0)):
        zone = cs.Zone(kind=cs.ZONE_KIND_HOME, display_name="집", area=area)
        await expect_error(
            registry.CreateZone(
                cs.CreateZoneRequest(
                    parent=world.center, zone=zone, zone_id=new_id(ctx, "z"), request_id=ctx.request_id()
                )
            ),
            code=INVALID,
            reason="INVALID_FIELD",
            what=f"CreateZone with area {area}",
        )
    reader = cs.Reader(
        kind=cs.READER_KIND_STREET,
        location=point(world.lat, world.lon),
        address=common_pb2.CivicAddress(
            road_address="서울특별시 종로구 율곡로 1", legal_dong_code="111101010"
        ),
        gateway=gateway_subject(ctx),
        active=True,
    )
    await expect_error(
        registry.CreateReader(
            cs.CreateReaderRequest(
                parent=world.center, reader=reader, reader_id=new_id(ctx, "r"), request_id=ctx.request_id()
            )
        ),
        code=INVALID,
        reason="INVALID_FIELD",
        field="reader.address.legal_dong_code",
    )


# --- time-based rules in TEST mode (§14.5.2 TAG-022, §14.5.3 TAG-023) ---------------------------------

#: Asia/Seoul, where LocalTimeWindows are read (no daylight saving).
KST = timezone(timedelta(hours=9))
#: Time from setting an expected window to the moment it falls due.
MISSED_LEAD_S = 4
#: TEST-mode time-based rules fire within 5 s [TAG-022, TAG-023]; the suite allows network slack.
TEST_LATENCY_S = 5.0 + 2.0
#: The longest wait for 00:01 Asia/Seoul before placing a window (from 23:59:50); the cases that
#: place windows add it to their timeouts.
MIDNIGHT_WAIT_S = 71
#: The longest declared TEST exit absence the suite waits for.
MAX_EXIT_ABSENCE_S = 20


async def _clear_of_midnight() -> datetime:
    """Now in Asia/Seoul, once the window of the minute that just ended and its grace lie within
    one local day: from 23:59:50 to 00:01:00 this waits for 00:01 (at most ``MIDNIGHT_WAIT_S``),
    so that a run near midnight checks the rule instead of skipping it."""
    local = datetime.now(KST)
    if (local.hour, local.minute) == (0, 0) or (local.hour, local.minute, local.second) >= (23, 59, 50):
        clear = (local + timedelta(seconds=15)).replace(hour=0, minute=1, second=0, microsecond=0)
        await asyncio.sleep(max(0.0, (clear - local).total_seconds()) + 0.05)
        local = datetime.now(KST)
    return local


async def expect_arrivals_missed(world: World, zones: list[cs.Zone]) -> datetime:
    """Give the ward an expected window at each of ``zones`` that ended a moment ago, with a grace
    that makes it due MISSED_LEAD_S seconds from now [TAG-015]; returns the due time (UTC)."""
    local = await _clear_of_midnight()
    end = local.replace(second=0, microsecond=0)
    grace = int((local - end).total_seconds()) + 1 + MISSED_LEAD_S
    window = cs.LocalTimeWindow(
        weekdays=[local.isoweekday()],
        start_local_time=(end - timedelta(minutes=1)).strftime("%H:%M"),
        end_local_time=end.strftime("%H:%M"),
    )
    ward = cs.Ward(name=world.ward.name)
    for zone in zones:
        ward.expected_arrivals.add(zone=zone.name, window=window, grace=duration_pb2.Duration(seconds=grace))
    updated = await expect_ok(
        world.registry().UpdateWard(
            cs.UpdateWardRequest(
                ward=ward,
                update_mask=field_mask_pb2.FieldMask(paths=["expected_arrivals"]),
                request_id=world.ctx.request_id(),
            )
        ),
        "UpdateWard with expected windows that end now",
    )
    check(len(updated.expected_arrivals) == len(zones), "UpdateWard did not keep the expected windows")
    return (end + timedelta(seconds=grace)).astimezone(UTC)


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - now()).total_seconds()))


@case(
    "TC_TAG_018_SRV",
    title=(
        "A TEST ward unseen at its school by window end + grace gets one MISSED_EXPECTED_ARRIVAL "
        "within 5 s, WARNING, timed at end + grace; the academy where it was seen gets none"
    ),
    requirements=["TAG-015", "TAG-023", "GRD-002", "CHD-017"],
    profile=PROFILE,
    kind="positive",
    timeout=40 + MIDNIGHT_WAIT_S,
)
async def missed_expected_arrival(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    # A TEST sighting of the ward at the academy: the academy window is met, and the ward's latest
    # tag event is TEST, so its missed arrivals are TEST-mode.
    await world.submit(world.sighting(world.academy_reader, now() - timedelta(seconds=1)))
    due = await expect_arrivals_missed(world, [world.school, world.academy])
    await sleep_until(due - timedelta(seconds=1.5))
    early = await world.wait_for(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL, wait_s=0)
    check(not early, "MISSED_EXPECTED_ARRIVAL was derived before the window's end plus grace [TAG-015]")
    await sleep_until(due)
    missed = await world.wait_for(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL, wait_s=TEST_LATENCY_S)
    check(
        bool(missed),
        f"no MISSED_EXPECTED_ARRIVAL within {TEST_LATENCY_S:.0f} s of the school window's end plus grace "
        "for a ward whose latest tag event is TEST [TAG-015, TAG-023]",
    )
    await asyncio.sleep(1.0)  # let a wrongly derived academy one show up too
    missed = await world.wait_for(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL, count=2, wait_s=0)
    zones = sorted(n.zone for n in missed)
    check(
        zones == [world.school.name],
        f"expected one MISSED_EXPECTED_ARRIVAL for the school only (the academy saw the ward), got {zones} "
        "[TAG-015]",
    )
    n = missed[0]
    check(n.mode == ctx.mode, "the missed arrival of a ward whose latest tag event is TEST must be TEST")
    check(
        abs((n.event_time.ToDatetime(tzinfo=UTC) - due).total_seconds()) < 0.001,
        f"event_time is {n.event_time.ToJsonString()}, not the window's end plus grace "
        f"{due.isoformat()} [TAG-015]",
    )
    check(
        n.severity == gd.NOTIFICATION_SEVERITY_WARNING and n.HasField("ack_deadline"),
        "MISSED_EXPECTED_ARRIVAL is WARNING with an ack_deadline [GRD-002]",
    )
    await expect_ok(
        world.guardians().AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=n.name, request_id=ctx.request_id())
        ),
        "the guardian's acknowledgement",
    )


@case(
    "TC_TAG_019_SRV",
    title=(
        "A ward IN a danger zone through TEST sightings gets LEFT_DANGER_ZONE (INFO, TEST, timed at the "
        "last in-zone sighting) after the declared TEST exit absence, not before"
    ),
    requirements=["TAG-014", "TAG-022"],
    profile=PROFILE,
    kind="positive",
    timeout=45,
)
async def left_danger_zone(ctx: CaseContext) -> None:
    absence = ctx.declaration.test_timers.danger_exit_absence_seconds
    if absence is None:
        ctx.skip("declare test_timers.danger_exit_absence_seconds: the TEST exit absence in force [TAG-022]")
        return
    if absence > MAX_EXIT_ABSENCE_S:
        ctx.skip(
            f"the declared TEST exit absence is {absence} s; the suite waits at most {MAX_EXIT_ABSENCE_S} s"
        )
    world = await build_world(ctx)
    last_in = now() - timedelta(seconds=1)
    await world.submit(
        world.sighting(world.street, last_in - timedelta(seconds=1)), world.sighting(world.street, last_in)
    )
    entered = await world.wait_for(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE)
    check(
        len(entered) == 1,
        f"two in-zone sightings must derive ENTERED_DANGER_ZONE, got {len(entered)} [TAG-013]",
    )
    await expect_ok(
        world.guardians().AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=entered[0].name, request_id=ctx.request_id())
        ),
        "the guardian's acknowledgement of the entry",
    )
    exit_time = last_in + timedelta(seconds=absence)
    if exit_time - now() > timedelta(seconds=1.5):
        await sleep_until(exit_time - timedelta(seconds=1.5))
        early = await world.wait_for(cs.DERIVED_EVENT_KIND_LEFT_DANGER_ZONE, wait_s=0)
        check(
            not early,
            f"LEFT_DANGER_ZONE came before the TEST exit absence of {absence} s had passed [TAG-022]",
        )
    await sleep_until(exit_time)
    left = await world.wait_for(cs.DERIVED_EVENT_KIND_LEFT_DANGER_ZONE, wait_s=TEST_LATENCY_S)
    check(
        len(left) == 1,
        f"expected one LEFT_DANGER_ZONE within {TEST_LATENCY_S:.0f} s of the TEST exit absence ({absence} s) "
        f"after the last in-zone sighting, got {len(left)} [TAG-014, TAG-022]",
    )
    n = left[0]
    check(n.zone == world.danger.name, f"LEFT_DANGER_ZONE must name the zone, got {n.zone!r}")
    check(n.mode == ctx.mode, "LEFT_DANGER_ZONE must have the mode of the last in-zone sighting [TAG-022]")
    check(
        abs((n.event_time.ToDatetime(tzinfo=UTC) - last_in).total_seconds()) < 0.001,
        f"event_time is {n.event_time.ToJsonString()}, not the last in-zone sighting's observed time "
        f"{last_in.isoformat()} [TAG-014]",
    )
    check(
        n.severity == gd.NOTIFICATION_SEVERITY_INFO and not n.HasField("ack_deadline"),
        "LEFT_DANGER_ZONE is INFO without ack_deadline [GRD-002]",
    )
