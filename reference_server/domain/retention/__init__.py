"""The center's retention purge (spec §4.2, PRV-010/011/014/015).

Each area registers the data classes it keeps with :meth:`RetentionRegistry.register_purge`; the
:class:`RetentionJob` (an asyncio background task) calls every registered purge with the cut-off
time of its class's configured period and records each purge that deleted something in the audit
log (data class, count, cut-off, never the purged content) [PRV-014].

Areas reach the registry through ``ctx.domain.extra[RETENTION_PORT]`` (installed by the safe-trip
plugin, which also starts the job) or, before that plugin ran, through :func:`retention_registry`,
which installs it on first use, so the order of the plugins does not matter::

    from reference_server.domain.retention import retention_registry

    retention_registry(ctx).register_purge("tag_sightings", purge_sightings)

where ``async def purge_sightings(tx, cutoff: datetime) -> int`` deletes the rows older than
``cutoff`` inside ``tx`` and returns how many it deleted.
"""

from reference_server.domain.retention.job import RetentionJob
from reference_server.domain.retention.registry import (
    DATA_CLASSES,
    RETENTION_JOB,
    RETENTION_PORT,
    PurgeFunction,
    RetentionRegistry,
    retention_registry,
)

__all__ = [
    "DATA_CLASSES",
    "RETENTION_JOB",
    "RETENTION_PORT",
    "PurgeFunction",
    "RetentionJob",
    "RetentionRegistry",
    "retention_registry",
]
