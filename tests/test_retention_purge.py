"""The retention framework (spec §4.2): bounds checked at start-up [PRV-010], purges run by the job
and recorded in the audit log without content [PRV-014], the TEST-mode period [PRV-015]."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reference_server.clock import OffsetClock
from reference_server.config import ConfigError, RetentionSettings, load_settings
from reference_server.domain.retention import RetentionJob, RetentionRegistry
from reference_server.domain.retention.job import ACTION, ACTOR
from reference_server.security.tokens import TokenIssuer
from reference_server.store.interface import Transaction
from reference_server.store.sqlite import SqliteStore


def settings_file(tmp_path: Path, extra: str) -> Path:
    key = tmp_path / "idp.key"
    TokenIssuer.create("https://idp.example", key)
    path = tmp_path / "c.yaml"
    path.write_text(
        "center_id: c1\ndisplay_name: x\ninsecure_dev: true\ntls:\n  client_cert_required_roles: []\n"
        f"tokens:\n  issuers:\n    https://idp.example: {key.with_suffix('.pub.pem')}\n" + extra,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("retention:\n  location_traces: P91D\n", "location_traces must lie in"),
        ("retention:\n  location_traces: PT12H\n", "location_traces must lie in"),
        ("retention:\n  grants: P365D\n", "grants must lie in"),
        ("retention:\n  notifications: P3D\n", "notifications must lie in"),
        ("retention:\n  access_records: P30D\n", "access_records must lie in"),
        ("retention:\n  emergencies: P7D\n", "emergencies must lie in"),
        ("retention:\n  test_location_traces: 2\n", "test_location_traces must lie in"),
        ("timers:\n  trip_location_silence: 60\n", "trip_location_silence must lie in"),
        ("timers:\n  trip_escalation_delay: PT11M\n", "trip_escalation_delay must lie in"),
        ("timers:\n  trip_test_escalation_delay: 2\n", "trip_test_escalation_delay must lie in"),
    ],
)
def test_out_of_bounds_periods_refuse_to_start(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(settings_file(tmp_path, extra))


def test_defaults_and_test_mode_period_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(settings_file(tmp_path, "retention:\n  test_location_traces: 5\n"))
    assert settings.retention.test_location_traces == timedelta(seconds=5)
    registry = RetentionRegistry(settings.retention)
    assert registry.period("test_location_traces") == timedelta(seconds=5)
    assert registry.period("location_traces") == timedelta(days=30)
    assert RetentionRegistry(RetentionSettings()).period("test_location_traces") == timedelta(days=30)
    demo = RetentionRegistry(RetentionSettings(), test_default=timedelta(seconds=5))
    assert demo.period("test_location_traces") == timedelta(seconds=5)


def test_unknown_data_class_needs_an_explicit_period() -> None:
    registry = RetentionRegistry(RetentionSettings())

    async def nothing(tx: Transaction, cutoff: datetime) -> int:
        return 0

    with pytest.raises(KeyError):
        registry.register_purge("mystery", nothing)
    registry.register_purge("mystery", nothing, period=timedelta(days=2))
    assert registry.purges[0].period == timedelta(days=2)


@pytest.mark.asyncio
async def test_job_purges_by_cutoff_and_audits_each_purge(tmp_path: Path) -> None:
    clock = OffsetClock()
    store = await SqliteStore.open(tmp_path / "db.sqlite", clock=clock)
    try:
        async with store.transaction() as tx:
            await tx.execute("CREATE TABLE things (created TEXT NOT NULL)")
            for age in (1, 2, 10, 20):
                await tx.execute(
                    "INSERT INTO things VALUES (?)", ((clock.now() - timedelta(days=age)).isoformat(),)
                )
        seen: list[datetime] = []

        async def purge(tx: Transaction, cutoff: datetime) -> int:
            seen.append(cutoff)
            return await tx.execute("DELETE FROM things WHERE created < ?", (cutoff.isoformat(),))

        registry = RetentionRegistry(RetentionSettings())
        registry.register_purge("tag_sightings", purge)  # 7 days by default
        job = RetentionJob(registry, store, clock)
        assert await job.run_once() == {"tag_sightings": 2}
        assert abs((clock.now() - seen[0]) - timedelta(days=7)) < timedelta(seconds=5)
        records = await store.audit_records()
        assert [(r.actor, r.action, r.resource) for r in records] == [(ACTOR, ACTION, "tag_sightings")]
        assert records[0].outcome.startswith("deleted 2; cutoff ")
        # Nothing left to purge: nothing is recorded.
        assert await job.run_once() == {"tag_sightings": 0}
        assert len(await store.audit_records()) == 1
        clock.advance(timedelta(days=6, hours=1))
        assert await job.run_once() == {"tag_sightings": 2}
        assert await store.verify_audit() is None
        assert job.interval() == timedelta(minutes=10)
    finally:
        await store.close()
