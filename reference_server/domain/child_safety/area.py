"""The child-safety area of one running center: its parts, built once and shared by the three
servicers (ChildSafetyService, TagEventService, GuardianService)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ansim.v1 import child_safety_pb2 as cs

from reference_server.context import ServerContext
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.ingest import Ingest
from reference_server.domain.child_safety.location import WardLocations
from reference_server.domain.child_safety.notifications import Notifier
from reference_server.domain.child_safety.registry import Registry
from reference_server.domain.child_safety.scheduler import Scheduler
from reference_server.domain.paging import PageTokens
from reference_server.store.sqlite import SqliteTransaction

#: Key of the area in ``ctx.domain.extra``; its ``reader_cameras`` is for the emergency area.
AREA_KEY = "child_safety"


@dataclass
class ChildSafetyArea:
    registry: Registry
    notifier: Notifier
    ingest: Ingest
    locations: WardLocations
    scheduler: Scheduler
    pages: PageTokens
    ctx: ServerContext

    async def reader_cameras(self, reader: str) -> list[str]:
        """The cameras at a reader's installation (TAG-017: listed first for a bell emergency)."""
        found = await repository.load(self.ctx.store, reader, cs.Reader)
        return list(found.cameras) if found is not None else []


def build(ctx: ServerContext) -> ChildSafetyArea:
    """Build the area once per center (idempotent: the three servicers share it)."""
    existing = ctx.domain.extra.get(AREA_KEY)
    if isinstance(existing, ChildSafetyArea):
        return existing
    center = ctx.settings.center_name
    pages = PageTokens.from_data_dir(ctx.settings.data_dir)
    notifier = Notifier(center, ctx.publisher, ctx.settings.timers, demo=ctx.demo_issuer is not None)
    ingest = Ingest(center, ctx.store, ctx.clock, notifier, ctx.domain)
    locations = WardLocations(
        center, ctx.store, ctx.clock, ctx.domain, pages, ctx.settings.retention.tag_sightings
    )
    area = ChildSafetyArea(
        Registry(center, pages),
        notifier,
        ingest,
        locations,
        Scheduler(ctx.store, ctx.clock, notifier, ingest),
        pages,
        ctx,
    )
    ctx.domain.extra[AREA_KEY] = area
    _register_purges(ctx)
    return area


def _register_purges(ctx: ServerContext) -> None:
    """Sightings after retention.tag_sightings, notifications after retention.notifications, event
    ids for deduplication after 7 days (§14.8) [PRV-010]."""
    from datetime import timedelta

    from reference_server.clock import to_rfc3339
    from reference_server.domain.retention import retention_registry

    async def sightings(tx: SqliteTransaction, cutoff: datetime) -> int:
        return await tx.execute("DELETE FROM cs_sightings WHERE observed < ?", (to_rfc3339(cutoff),))

    async def notifications(tx: SqliteTransaction, cutoff: datetime) -> int:
        text = to_rfc3339(cutoff)
        await tx.execute(
            "DELETE FROM cs_alerts WHERE derived_event_id IN (SELECT id FROM cs_derived WHERE created < ?)",
            (text,),
        )
        await tx.execute("DELETE FROM cs_derived WHERE created < ?", (text,))
        return await tx.execute("DELETE FROM cs_notifications WHERE created < ?", (text,))

    async def event_ids(tx: SqliteTransaction, cutoff: datetime) -> int:
        return await tx.execute("DELETE FROM cs_tag_events WHERE received < ?", (to_rfc3339(cutoff),))

    registry = retention_registry(ctx)
    registry.register_purge("tag_sightings", sightings)
    registry.register_purge("notifications", notifications)
    registry.register_purge("tag_event_ids", event_ids, period=timedelta(days=7))
