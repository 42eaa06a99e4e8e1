"""Conformance cases of the statistics profile (spec §18).

The figures of a center under test depend on its data, so the positive cases check what holds for
any data: one bucket per value combination in the documented order, no published figure from 1 to
4, the complementary-suppression shape of every line, and the echo of the request. The negative
cases check the range rules and the authorization of §18.6.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import date, timedelta
from typing import Any

import grpc
from ansim.v1 import common_pb2, emergency_pb2, statistics_pb2, statistics_pb2_grpc

from conformance import CaseContext, case, check, expect_error, expect_ok

P = statistics_pb2
PROFILE = "statistics"
KINDS = [v.number for v in emergency_pb2.EmergencyKind.DESCRIPTOR.values if v.number != 0]


def _stub(ctx: CaseContext, role: str, *, token: str | None = None) -> Any:
    """A stub as ``Any``: grpc's generated stubs are typed for sync calls, these calls are awaited."""
    return ctx.stub(statistics_pb2_grpc.StatisticsServiceStub, role, token=token)


def month_range() -> tuple[str, str]:
    today = date.today()
    first = today.replace(day=1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first.isoformat(), following.isoformat()


def request(ctx: CaseContext, **fields: Any) -> statistics_pb2.GetIncidentStatisticsRequest:
    start, end = month_range()
    base: dict[str, Any] = {
        "parent": ctx.center(),
        "start_date": start,
        "end_date": end,
        "period": P.STATISTICS_PERIOD_MONTH,
        "modes": [common_pb2.MODE_TEST],
    }
    base.update(fields)
    return P.GetIncidentStatisticsRequest(**base)


def published(figure: statistics_pb2.StatisticsCount, what: str) -> int | None:
    """The published count, or None when suppressed; fails on a published 1-4 [STA-004]."""
    check(figure.HasField("count") != figure.suppressed, f"{what}: exactly one of count and suppressed")
    if figure.suppressed:
        return None
    check(not 0 < figure.count < 5, f"{what}: a count of {figure.count} must be suppressed")
    return figure.count


def check_line(figures: list[statistics_pb2.StatisticsCount], what: str) -> None:
    """STA-005 shape: no bucket suppressed, or at least two, unless the others are all zero."""
    hidden = [f for f in figures if f.suppressed]
    if len(hidden) == 1:
        others = [f.count for f in figures if not f.suppressed]
        check(
            all(c == 0 for c in others), f"{what}: a single suppressed bucket can be derived from the total"
        )


@case(
    "TC_STA_001_SRV",
    title="Grouped by KIND: one bucket per defined kind in enum order, k = 5, no published 1-4, "
    "complementary suppression",
    requirements=["STA-003", "STA-004", "STA-005", "STA-006"],
    profile=PROFILE,
    kind="positive",
)
async def by_kind(ctx: CaseContext) -> None:
    stub = _stub(ctx, "CENTER_OPERATOR")
    answer = await expect_ok(stub.GetIncidentStatistics(request(ctx, group_by=[P.STATISTICS_DIMENSION_KIND])))
    check(answer.suppression_threshold == 5, "suppression_threshold must be 5")
    check([b.kind for b in answer.buckets] == KINDS, "one bucket per defined EmergencyKind, in enum order")
    for bucket in answer.buckets:
        check(not bucket.zone and not bucket.center and not bucket.period_start_date, "only kind may be set")
        published(bucket.count, f"bucket {emergency_pb2.EmergencyKind.Name(bucket.kind)}")
    total = published(answer.total, "total")
    check_line([b.count for b in answer.buckets], "the kinds")
    counts = [b.count.count for b in answer.buckets]
    if total is not None and not any(b.count.suppressed for b in answer.buckets):
        check(
            sum(counts) == total, "without suppression the kinds add up to the total (one kind per incident)"
        )
    check(list(answer.modes) == [common_pb2.MODE_TEST], "modes must echo the modes counted")
    check(answer.HasField("compute_time"), "compute_time is required")


@case(
    "TC_STA_002_SRV",
    title="Grouped by KIND and PERIOD (days of a week): every combination, sorted by kind then day",
    requirements=["STA-003", "STA-005"],
    profile=PROFILE,
    kind="positive",
)
async def by_kind_and_day(ctx: CaseContext) -> None:
    today = date.today()
    monday = today - timedelta(days=today.isoweekday() - 1)
    days = [(monday + timedelta(days=i)).isoformat() for i in range(7)]
    stub = _stub(ctx, "AUDITOR")
    answer = await expect_ok(
        stub.GetIncidentStatistics(
            request(
                ctx,
                start_date=days[0],
                end_date=(monday + timedelta(days=7)).isoformat(),
                period=P.STATISTICS_PERIOD_DAY,
                group_by=[P.STATISTICS_DIMENSION_KIND, P.STATISTICS_DIMENSION_PERIOD],
            )
        )
    )
    expected = [(k, d) for k in KINDS for d in days]
    got = [(b.kind, b.period_start_date) for b in answer.buckets]
    check(got == expected, f"expected {len(expected)} buckets sorted by kind then day, got {len(got)}")
    for bucket in answer.buckets:
        published(bucket.count, f"bucket {bucket.kind}/{bucket.period_start_date}")
    for kind in KINDS:
        check_line([b.count for b in answer.buckets if b.kind == kind], f"the days of kind {kind}")
    for day in days:
        check_line([b.count for b in answer.buckets if b.period_start_date == day], f"the kinds of {day}")


@case(
    "TC_STA_003_SRV",
    title="Modes default to LIVE alone; a request for TEST counts TEST",
    requirements=["STA-001"],
    profile=PROFILE,
    kind="positive",
)
async def default_modes(ctx: CaseContext) -> None:
    stub = _stub(ctx, "CENTER_OPERATOR")
    live = await expect_ok(stub.GetIncidentStatistics(request(ctx, modes=[])))
    check(
        list(live.modes) == [common_pb2.MODE_LIVE],
        f"modes must be [LIVE] when none are listed, got {live.modes}",
    )
    check(not live.buckets, "no group_by gives no buckets, only the total")
    both = await expect_ok(
        stub.GetIncidentStatistics(request(ctx, modes=[common_pb2.MODE_TEST, common_pb2.MODE_LIVE]))
    )
    check(set(both.modes) == {common_pb2.MODE_TEST, common_pb2.MODE_LIVE}, "modes must echo the listed modes")


@case(
    "TC_STA_004_SRV",
    title="GetIncidentStatistics with reversed, too long or misaligned dates, a repeated dimension or "
    "no period fails INVALID_FIELD",
    requirements=["STA-002"],
    profile=PROFILE,
    kind="negative",
)
async def invalid_ranges(ctx: CaseContext) -> None:
    stub = _stub(ctx, "CENTER_OPERATOR")
    bad = {
        "start not before end": request(ctx, start_date="2026-03-01", end_date="2026-03-01"),
        "a range of 732 days": request(
            ctx, start_date="2024-01-01", end_date="2026-01-02", period=P.STATISTICS_PERIOD_DAY
        ),
        "a WEEK range not starting on a Monday": request(
            ctx, start_date="2026-03-03", end_date="2026-03-10", period=P.STATISTICS_PERIOD_WEEK
        ),
        "a MONTH range not starting on the 1st": request(ctx, start_date="2026-03-02", end_date="2026-04-01"),
        "a repeated dimension": request(
            ctx, group_by=[P.STATISTICS_DIMENSION_KIND, P.STATISTICS_DIMENSION_KIND]
        ),
        "no period": request(ctx, period=P.STATISTICS_PERIOD_UNSPECIFIED),
    }
    for what, message in bad.items():
        await expect_error(
            stub.GetIncidentStatistics(message),
            code=grpc.StatusCode.INVALID_ARGUMENT,
            reason="INVALID_FIELD",
            what=f"GetIncidentStatistics with {what}",
        )


@case(
    "TC_STA_005_SRV",
    title="An operator of another center and an officer of an agency not serving the center get NOT_OWNER",
    requirements=["STA-011"],
    profile=PROFILE,
    kind="negative",
)
async def not_owner(ctx: CaseContext) -> None:
    other_operator = ctx.tokens.mint("CENTER_OPERATOR", claims={"center": f"centers/{ctx.resource_id('c')}"})
    stranger = f"agencies/{ctx.resource_id('a')}"
    other_officer = ctx.tokens.mint(
        "POLICE_OFFICER", claims={"agency": stranger, "sub": f"officers/x/{uuid.uuid4().hex[:8]}"}
    )
    for what, role, token in (
        ("an operator of another center", "CENTER_OPERATOR", other_operator),
        ("an officer of another agency", "POLICE_OFFICER", other_officer),
    ):
        stub = _stub(ctx, role, token=token)
        await expect_error(
            stub.GetIncidentStatistics(request(ctx)),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="NOT_OWNER",
            what=f"GetIncidentStatistics by {what}",
        )
        zone = f"{ctx.center()}/zones/{ctx.resource_id('z')}"
        await expect_error(
            stub.CompareZoneBeforeAfter(
                P.CompareZoneBeforeAfterRequest(zone=zone, go_live_date="2026-03-02", window_days=30)
            ),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="NOT_OWNER",
            what=f"CompareZoneBeforeAfter by {what}",
        )


@case(
    "TC_STA_006_SRV",
    title="App users, guardians, gateways and peer centers may not call StatisticsService",
    requirements=["SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def roles_denied(ctx: CaseContext) -> None:
    for role in ("APP_USER", "GUARDIAN", "READER_GATEWAY", "PEER_CENTER"):
        await expect_error(
            _stub(ctx, role).GetIncidentStatistics(request(ctx)),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"GetIncidentStatistics by {role}",
        )


@case(
    "TC_STA_007_SRV",
    title="CompareZoneBeforeAfter of an unknown zone is NOT_FOUND; a malformed zone or window is "
    "INVALID_FIELD",
    requirements=["STA-007", "GEN-023"],
    profile=PROFILE,
    kind="negative",
)
async def compare_unknown_zone(ctx: CaseContext) -> None:
    stub = _stub(ctx, "CENTER_OPERATOR")
    zone = f"{ctx.center()}/zones/{ctx.resource_id('nozone')}"
    await expect_error(
        stub.CompareZoneBeforeAfter(
            P.CompareZoneBeforeAfterRequest(zone=zone, go_live_date="2026-03-02", window_days=30)
        ),
        code=grpc.StatusCode.NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
    )
    await expect_error(
        stub.CompareZoneBeforeAfter(
            P.CompareZoneBeforeAfterRequest(zone="zones/Bad", go_live_date="2026-03-02", window_days=30)
        ),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="zone",
    )
    await expect_error(
        stub.CompareZoneBeforeAfter(
            P.CompareZoneBeforeAfterRequest(zone=zone, go_live_date="2026-03-02", window_days=3)
        ),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="window_days",
    )


@case(
    "TC_STA_008_SRV",
    title="CompareZoneBeforeAfter of a zone registered today: no before window, an after window cut at "
    "today, one row per kind in enum order plus the total, rates only where defined",
    requirements=["STA-008", "STA-009", "STA-007"],
    profile=PROFILE,
    kind="positive",
)
async def compare_new_zone(ctx: CaseContext) -> None:
    from ansim.v1 import child_safety_pb2 as cs
    from ansim.v1 import child_safety_pb2_grpc as csg

    if not ctx.has_profile("child-safety") or (
        ctx.fixtures.child_safety is not None and ctx.fixtures.child_safety.provisioning != "api"
    ):
        ctx.skip(
            "the case registers its own SAFE_ZONE through ChildSafetyService (child-safety, provisioning api)"
        )
        return
    where = ctx.fixtures.service_area_location or ctx.fixtures.camera_location
    lat, lon = (where.latitude, where.longitude) if where is not None else (37.5729, 126.9794)
    registry: Any = ctx.stub(csg.ChildSafetyServiceStub, "CENTER_OPERATOR")
    area = common_pb2.Area(
        circles=[common_pb2.Area.Circle(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=150)]
    )
    zone = await expect_ok(
        registry.CreateZone(
            cs.CreateZoneRequest(
                parent=ctx.center(),
                zone=cs.Zone(kind=cs.ZONE_KIND_SAFE_ZONE, display_name="conformance statistics", area=area),
                zone_id=ctx.resource_id("sz"),
                request_id=ctx.request_id(),
            )
        ),
        "CreateZone",
    )

    async def cleanup() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await registry.DeleteZone(cs.DeleteZoneRequest(name=zone.name, request_id=ctx.request_id()))

    ctx.on_cleanup(cleanup)
    today = date.fromisoformat(zone.create_time.ToDatetime().date().isoformat())  # UTC day of registration
    go_live = today - timedelta(days=12)
    answer = await expect_ok(
        _stub(ctx, "AUDITOR").CompareZoneBeforeAfter(
            P.CompareZoneBeforeAfterRequest(
                zone=zone.name, go_live_date=go_live.isoformat(), window_days=30, settle_days=2
            )
        )
    )
    check(
        answer.before_days == 0,
        f"a zone registered after go-live has no before window, got {answer.before_days}",
    )
    check(
        answer.after_start_date == (go_live + timedelta(days=2)).isoformat(),
        "the after window starts at go_live_date plus settle_days",
    )
    check(
        answer.after_days in (9, 10, 11),
        f"the after window is cut at today (about 10 days), got {answer.after_days}",
    )
    check(answer.suppression_threshold == 5, "suppression_threshold must be 5")
    check([r.kind for r in answer.rows] == KINDS, "one row per defined EmergencyKind, in enum order")
    check(answer.total.kind == emergency_pb2.EMERGENCY_KIND_UNSPECIFIED, "the total row has kind UNSPECIFIED")
    for row in [*answer.rows, answer.total]:
        check(not row.HasField("before"), "no before figure without before days")
        check(not row.HasField("before_rate_per_30_days"), "no before rate without before days")
        check(not row.HasField("change_percent"), "no change without a before rate")
        if row.HasField("after") and not row.after.suppressed:
            expected = round(row.after.count * 30 / answer.after_days, 2)
            check(
                abs(row.after_rate_per_30_days - expected) < 0.006,
                f"after rate must be count × 30 / after_days = {expected}",
            )
        published(row.after, f"after figure of kind {row.kind}")
