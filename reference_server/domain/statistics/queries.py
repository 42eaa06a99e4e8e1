"""GetIncidentStatistics and CompareZoneBeforeAfter (spec §18), answered from the daily aggregates."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ansim.v1 import common_pb2, emergency_pb2, error_pb2, statistics_pb2
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from reference_server.context import ServerContext
from reference_server.domain.statistics import aggregates, calendar
from reference_server.domain.statistics.suppression import K, suppress
from reference_server.domain.statistics.zones import COUNTED_KINDS, all_zones
from reference_server.security.caller import Caller
from reference_server.store.interface import Transaction

P = statistics_pb2
KINDS = [v.number for v in emergency_pb2.EmergencyKind.DESCRIPTOR.values if v.number != 0]
MAX_BUCKETS = 100_000


def _invalid(field: str, description: str, requirement: str = "STA-002") -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description, requirement)])


def _figure(count: int, suppressed: bool) -> statistics_pb2.StatisticsCount:
    return P.StatisticsCount(suppressed=True) if suppressed else P.StatisticsCount(count=count)


def _round(value: float, places: str) -> float:
    return float(Decimal(repr(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Filter:
    start: date
    end: date
    modes: tuple[int, ...]
    kinds: tuple[int, ...]
    zone: str | None = None


class Statistics:
    """The statistics area of one center."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.center = ctx.settings.center_name

    # --- authorization and audit (STA-011) -------------------------------------------------------

    def serving_agencies(self) -> frozenset[str]:
        """Agencies serving this center: its configured agencies (and the emergency area's list)."""
        names = {a.name for a in getattr(self.ctx.settings, "agencies", ())}
        directory = getattr(self.ctx.domain.extra.get("sos"), "agencies", None)
        listed = getattr(directory, "agencies", ())
        listed = listed() if callable(listed) else listed
        names.update(str(getattr(a, "name", "")) for a in listed)
        return frozenset(n for n in names if n)

    def authorize(self, caller: Caller, parent: str) -> None:
        role = caller.role
        if role == common_pb2.ROLE_CENTER_OPERATOR and caller.center != parent:
            raise AnsimError(
                error_pb2.ERROR_REASON_NOT_OWNER, "operators see the statistics of their own center"
            )
        officer = role in (common_pb2.ROLE_POLICE_OFFICER, common_pb2.ROLE_FIRE_OFFICER)
        if officer and caller.agency not in self.serving_agencies():
            raise AnsimError(
                error_pb2.ERROR_REASON_NOT_OWNER, "the officer's agency does not serve this center"
            )
        if parent != self.center:
            raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"this center is {self.center}")

    async def audited(
        self,
        caller: Caller,
        action: str,
        resource: str,
        request: Message,
        work: Callable[[Transaction], Any],
    ) -> Any:
        """Run ``work`` after counting new incidents, and audit the call with every parameter."""
        params = json.dumps(
            json_format.MessageToDict(request, preserving_proto_field_name=True),
            ensure_ascii=False,
            sort_keys=True,
        )
        try:
            async with self.ctx.store.transaction() as tx:
                await aggregates.catch_up(tx, self.center)
                result = await work(tx)
                await tx.append_audit(caller.subject, action, resource, f"statistics {params}", "ok")
                return result
        except AnsimError as error:
            async with self.ctx.store.transaction() as tx:
                reason = error_pb2.ErrorReason.Name(error.reason).removeprefix("ERROR_REASON_")  # type: ignore[arg-type]
                await tx.append_audit(
                    caller.subject, action, resource, f"statistics {params}", f"refused {reason}"
                )
            raise

    # --- counting ----------------------------------------------------------------------------------

    async def _rows(self, tx: Transaction, f: Filter, all_zone_rows: bool) -> list[dict[str, Any]]:
        sql = (
            "SELECT local_date, kind, mode, center, zone, count FROM stat_daily"
            " WHERE local_date >= ? AND local_date < ?"
        )
        params: list[object] = [f.start.isoformat(), f.end.isoformat()]
        sql += f" AND mode IN ({', '.join('?' * len(f.modes))})"
        params += list(f.modes)
        if f.kinds:
            sql += f" AND kind IN ({', '.join('?' * len(f.kinds))})"
            params += list(f.kinds)
        if f.zone is not None:
            sql += " AND zone = ?"
            params.append(f.zone)
        elif not all_zone_rows:
            sql += " AND zone_slot = 1"
        return await tx.fetchall(sql, tuple(params))

    # --- GetIncidentStatistics ---------------------------------------------------------------------

    def _check_range(self, request: statistics_pb2.GetIncidentStatisticsRequest) -> tuple[date, date]:
        start, end = calendar.parse(request.start_date), calendar.parse(request.end_date)
        if start is None:
            raise _invalid("start_date", "not a calendar date")
        if end is None:
            raise _invalid("end_date", "not a calendar date")
        if not start < end:
            raise _invalid("start_date", "start_date must be before end_date")
        if (end - start).days > calendar.MAX_RANGE_DAYS:
            raise _invalid("end_date", "the range is longer than 731 days")
        for field, day in (("start_date", start), ("end_date", end)):
            if not calendar.aligned(day, request.period):
                raise _invalid(
                    field, "must be the first day of a period of `period` (Monday / first of month)"
                )
        if len(set(request.group_by)) != len(request.group_by):
            raise _invalid("group_by", "a dimension is repeated")
        return start, end

    async def incident_statistics(
        self, caller: Caller, request: statistics_pb2.GetIncidentStatisticsRequest
    ) -> statistics_pb2.IncidentStatistics:
        start, end = self._check_range(request)
        modes = tuple(request.modes) or (common_pb2.MODE_LIVE,)
        f = Filter(start, end, modes, tuple(request.kinds))

        async def work(tx: Transaction) -> statistics_pb2.IncidentStatistics:
            self.authorize(caller, request.parent)
            dims = list(request.group_by)
            values: dict[int, list[Hashable]] = {}
            rows = await self._rows(tx, f, P.STATISTICS_DIMENSION_ZONE in dims)
            zones = await all_zones(tx)
            for dim in dims:
                if dim == P.STATISTICS_DIMENSION_KIND:
                    values[dim] = list(KINDS)
                elif dim == P.STATISTICS_DIMENSION_ZONE:
                    names = {
                        z.name
                        for z in zones.values()
                        if z.kind in COUNTED_KINDS
                        and (z.registered is None or calendar.local_date(z.registered) < end)
                    }
                    names |= {str(r["zone"]) for r in rows}
                    values[dim] = list(sorted(names | {""}))
                elif dim == P.STATISTICS_DIMENSION_CENTER:
                    values[dim] = list(sorted({request.parent} | {str(r["center"]) for r in rows}))
                else:
                    values[dim] = [d.isoformat() for d in calendar.period_starts(start, end, request.period)]
            size = 1
            for dim in dims:
                size *= len(values[dim])
            if dims and size > MAX_BUCKETS:
                raise _invalid("group_by", "the grouping gives more than 100000 buckets")

            def key_of(row: dict[str, Any]) -> tuple[Hashable, ...]:
                out: list[Hashable] = []
                for dim in dims:
                    if dim == P.STATISTICS_DIMENSION_KIND:
                        out.append(int(row["kind"]))
                    elif dim == P.STATISTICS_DIMENSION_ZONE:
                        out.append(str(row["zone"]))
                    elif dim == P.STATISTICS_DIMENSION_CENTER:
                        out.append(str(row["center"]))
                    else:
                        day = date.fromisoformat(str(row["local_date"]))
                        out.append(calendar.period_start(day, request.period).isoformat())
                return tuple(out)

            totals: dict[tuple[Hashable, ...], int] = {}
            total = 0
            for row in rows:
                totals[key_of(row)] = totals.get(key_of(row), 0) + int(row["count"])
            if P.STATISTICS_DIMENSION_ZONE in dims:
                total = sum(int(r["count"]) for r in await self._rows(tx, f, False))
            else:
                total = sum(int(r["count"]) for r in rows)
            answer = P.IncidentStatistics(
                parent=request.parent,
                start_date=request.start_date,
                end_date=request.end_date,
                period=request.period,
                group_by=request.group_by,
                modes=modes,
                suppression_threshold=K,
                total=_figure(total, 0 < total < K),
                compute_time=_now(tx),
            )
            if dims:
                buckets = list(itertools.product(*(values[d] for d in dims)))
                counts = [totals.get(b, 0) for b in buckets]
                for bucket, count, hidden in zip(buckets, counts, suppress(buckets, counts), strict=True):
                    out = answer.buckets.add(count=_figure(count, hidden))
                    for dim, value in zip(dims, bucket, strict=True):
                        if dim == P.STATISTICS_DIMENSION_KIND:
                            out.kind = value  # type: ignore[assignment]
                        elif dim == P.STATISTICS_DIMENSION_ZONE:
                            out.zone = str(value)
                        elif dim == P.STATISTICS_DIMENSION_CENTER:
                            out.center = str(value)
                        else:
                            out.period_start_date = str(value)
            return answer

        result: statistics_pb2.IncidentStatistics = await self.audited(
            caller, "GET_INCIDENT_STATISTICS", request.parent, request, work
        )
        return result

    # --- CompareZoneBeforeAfter --------------------------------------------------------------------

    async def compare(
        self, caller: Caller, request: statistics_pb2.CompareZoneBeforeAfterRequest
    ) -> statistics_pb2.ZoneBeforeAfterComparison:
        go_live = calendar.parse(request.go_live_date)
        if go_live is None:
            raise _invalid("go_live_date", "not a calendar date", "STA-008")
        parent = request.zone.split("/zones/", 1)[0]
        modes = tuple(request.modes) or (common_pb2.MODE_LIVE,)

        async def work(tx: Transaction) -> statistics_pb2.ZoneBeforeAfterComparison:
            self.authorize(caller, parent)
            zone = (await all_zones(tx)).get(request.zone)
            if zone is None:
                raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"no zone {request.zone}")
            if zone.kind not in COUNTED_KINDS:
                raise _invalid("zone", "only SAFE_ZONE, SCHOOL and DANGER zones have statistics", "STA-007")
            window = timedelta(days=request.window_days)
            before_start = go_live - window
            if zone.registered is not None:
                before_start = max(before_start, calendar.local_date(zone.registered))
            before_days = max(0, (go_live - before_start).days)
            after_start = go_live + timedelta(days=request.settle_days)
            today = calendar.local_date(tx.now)
            after_end = min(after_start + window, today)
            after_days = max(0, (after_end - after_start).days)
            windows = [(before_start, before_start + timedelta(days=before_days)), (after_start, after_end)]
            counts: dict[tuple[int, int], int] = {}
            totals = [0, 0]
            for index, (first, end) in enumerate(windows):
                if first >= end:
                    continue
                for row in await self._rows(tx, Filter(first, end, modes, (), request.zone), True):
                    key = (int(row["kind"]), index)
                    counts[key] = counts.get(key, 0) + int(row["count"])
                    totals[index] += int(row["count"])
            present = [before_days > 0, after_days > 0]
            cells = [(k, w) for k in KINDS for w in (0, 1) if present[w]]
            values = [counts.get(c, 0) for c in cells]
            hidden = dict(zip(cells, suppress(cells, values), strict=True))
            answer = P.ZoneBeforeAfterComparison(
                zone=request.zone,
                go_live_date=request.go_live_date,
                before_start_date=before_start.isoformat(),
                before_days=before_days,
                after_start_date=after_start.isoformat(),
                after_days=after_days,
                modes=modes,
                suppression_threshold=K,
                compute_time=_now(tx),
            )
            days = (before_days, after_days)
            for kind in KINDS:
                figures = [
                    (counts.get((kind, w), 0), hidden.get((kind, w), False)) if present[w] else None
                    for w in (0, 1)
                ]
                _row(answer.rows.add(kind=kind), figures, days)
            total_figures = [(totals[w], 0 < totals[w] < K) if present[w] else None for w in (0, 1)]
            _row(answer.total, total_figures, days)
            return answer

        result: statistics_pb2.ZoneBeforeAfterComparison = await self.audited(
            caller, "COMPARE_ZONE_BEFORE_AFTER", request.zone, request, work
        )
        return result


def _now(tx: Transaction) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(tx.now)
    return out


def _row(
    row: statistics_pb2.BeforeAfterRow, figures: list[tuple[int, bool] | None], days: tuple[int, int]
) -> None:
    """Fill counts, rates per 30 days and the change as §18.4 defines them [STA-009]."""
    rates: list[float | None] = [None, None]
    for index, figure in enumerate(figures):
        if figure is None:
            continue
        count, hidden = figure
        (row.before if index == 0 else row.after).CopyFrom(_figure(count, hidden))
        if not hidden and days[index] > 0:
            rates[index] = count * 30 / days[index]
    if rates[0] is not None:
        row.before_rate_per_30_days = _round(rates[0], "0.01")
    if rates[1] is not None:
        row.after_rate_per_30_days = _round(rates[1], "0.01")
    if rates[0] is not None and rates[1] is not None and rates[0] != 0:
        row.change_percent = _round((rates[1] - rates[0]) / rates[0] * 100, "0.1")
