"""Registered purges per data class, and the period each class is kept (from the settings)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reference_server.config import RetentionSettings
from reference_server.store.sqlite import SqliteTransaction

if TYPE_CHECKING:
    from reference_server.context import ServerContext

#: Key of the registry in ``ctx.domain.extra``.
RETENTION_PORT = "retention"
#: Key of the running :class:`~reference_server.domain.retention.job.RetentionJob`.
RETENTION_JOB = "retention.job"

#: ``purge(tx, cutoff) -> count``: delete the data of the class older than ``cutoff`` in ``tx``.
PurgeFunction = Callable[[SqliteTransaction, datetime], Awaitable[int]]

#: The data classes of spec §4.2 → the RetentionSettings field holding their period.
#: ``test_location_traces`` is the separate period of TEST-mode fixes [PRV-015].
DATA_CLASSES: dict[str, str] = {
    "location_traces": "location_traces",
    "test_location_traces": "test_location_traces",
    "tag_sightings": "tag_sightings",
    "notifications": "notifications",
    "grants": "grants",
    "access_records": "access_records",
    "emergencies": "emergencies",
}


@dataclass(frozen=True)
class RegisteredPurge:
    data_class: str
    purge: PurgeFunction
    period: timedelta


class RetentionRegistry:
    """The purges the retention job runs (see the package docstring)."""

    def __init__(self, settings: RetentionSettings, *, test_default: timedelta | None = None) -> None:
        self._settings = settings
        self._test_default = test_default
        self._purges: list[RegisteredPurge] = []

    def period(self, data_class: str) -> timedelta:
        """The period in force for ``data_class`` (KeyError for an unknown class)."""
        value: timedelta | None = getattr(self._settings, DATA_CLASSES[data_class])
        if data_class == "test_location_traces" and value is None:
            value = self._test_default or self._settings.location_traces
        assert value is not None
        return value

    def register_purge(
        self, data_class: str, purge: PurgeFunction, *, period: timedelta | None = None
    ) -> None:
        """Run ``purge(tx, now - period)`` periodically. ``period`` defaults to the configured period
        of ``data_class``, which must then be one of :data:`DATA_CLASSES`."""
        if period is None:
            if data_class not in DATA_CLASSES:
                raise KeyError(
                    f"unknown data class {data_class!r}: pass period= or use one of {sorted(DATA_CLASSES)}"
                )
            period = self.period(data_class)
        if period <= timedelta(0):
            raise ValueError("a retention period must be positive")
        self._purges.append(RegisteredPurge(data_class, purge, period))

    @property
    def purges(self) -> tuple[RegisteredPurge, ...]:
        return tuple(self._purges)

    def shortest_period(self) -> timedelta | None:
        return min((p.period for p in self._purges), default=None)


def retention_registry(ctx: ServerContext) -> RetentionRegistry:
    """The center's registry, installed on ``ctx.domain.extra`` on first use; that first use also
    starts the retention job (plugins register inside the running event loop)."""
    found = ctx.domain.extra.get(RETENTION_PORT)
    if isinstance(found, RetentionRegistry):
        return found
    test_default = timedelta(seconds=5) if ctx.demo_issuer is not None else None
    registry = RetentionRegistry(ctx.settings.retention, test_default=test_default)
    ctx.domain.extra[RETENTION_PORT] = registry
    from reference_server.domain.retention.job import RetentionJob

    job = RetentionJob(registry, ctx.store, ctx.clock)
    ctx.domain.extra[RETENTION_JOB] = job
    try:
        job.start()
    except RuntimeError:  # no running loop (offline use): the caller runs job.run_once() itself
        pass
    else:
        background = getattr(ctx, "background", None)
        if isinstance(background, list) and job.task is not None:
            background.append(job.task)  # cancelled at shutdown before the store closes
    return registry
