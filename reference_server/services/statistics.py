"""StatisticsService (spec §18): thin servicer over :mod:`reference_server.domain.statistics`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import grpc.aio
from ansim.v1 import statistics_pb2, statistics_pb2_grpc

from ansim_sdk.errors import InvalidArgument
from ansim_sdk.validation import validate
from reference_server.context import ServerContext
from reference_server.domain.retention import retention_registry
from reference_server.domain.statistics import aggregates
from reference_server.domain.statistics.queries import Statistics
from reference_server.security.caller import current_caller
from reference_server.store.interface import Transaction

SERVICE = "ansim.v1.StatisticsService"
Context = grpc.aio.ServicerContext[Any, Any]
P = statistics_pb2
log = logging.getLogger("ansim.statistics")
#: How often new incidents are folded into the daily aggregates (also done before every query), so
#: that the aggregates exist before the emergency records are purged (STA-010).
AGGREGATE_INTERVAL_S = 60.0


class StatisticsServicer(statistics_pb2_grpc.StatisticsServiceServicer):
    def __init__(self, statistics: Statistics) -> None:
        self.statistics = statistics

    async def GetIncidentStatistics(
        self, request: P.GetIncidentStatisticsRequest, context: Context
    ) -> P.IncidentStatistics:
        try:
            validate(request)
        except InvalidArgument as error:
            # The message-level STA-002 rule (start before end) is about start_date.
            violations = [replace(v, field=v.field or "start_date") for v in error.field_violations]
            raise InvalidArgument(violations) from None
        return await self.statistics.incident_statistics(current_caller(), request)

    async def CompareZoneBeforeAfter(
        self, request: P.CompareZoneBeforeAfterRequest, context: Context
    ) -> P.ZoneBeforeAfterComparison:
        validate(request)
        return await self.statistics.compare(current_caller(), request)


async def _aggregate_loop(ctx: ServerContext) -> None:
    while True:
        try:
            async with ctx.store.transaction() as tx:
                await aggregates.catch_up(tx, ctx.settings.center_name)
        except Exception as error:  # the store closed at shutdown, or a bad row: logged, retried
            if "closed" in str(error):
                return
            log.exception("statistics aggregation failed")
        await ctx.clock.sleep(AGGREGATE_INTERVAL_S)


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    statistics = Statistics(ctx)
    ctx.domain.extra["statistics"] = statistics

    async def purge_counted(tx: Transaction, cutoff: Any) -> int:
        # The dedup hashes live as long as the emergency records; the aggregates are kept.
        from reference_server.clock import to_rfc3339

        return await tx.execute(
            "DELETE FROM stat_counted WHERE incident_hash <> ? AND counted < ?",
            (aggregates.WATERMARK, to_rfc3339(cutoff)),
        )

    retention_registry(ctx).register_purge("emergencies", purge_counted)
    task = asyncio.get_running_loop().create_task(_aggregate_loop(ctx), name="ansim-statistics")
    background = getattr(ctx, "background", None)
    if isinstance(background, list):
        background.append(task)
    statistics_pb2_grpc.add_StatisticsServiceServicer_to_server(StatisticsServicer(statistics), server)
    return [SERVICE]
