"""Several centers in one process (as ``reference_server.demo.multihost`` hosts them).

Stopping one center (``CenterServer.stop``) must stop all of its background work — timers,
schedulers, federation loops — before its store closes, while the process and the other centers
carry on: afterwards no task of it is left and nothing it left behind logs an error ("Cannot
operate on a closed database"). The active-emergency gauge is kept per center, so centers sharing
the process's Prometheus registry do not overwrite each other's counts.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc
from prometheus_client import REGISTRY

from reference_server import plugins
from reference_server.app import CenterServer
from reference_server.cli import DEMO_ISSUER, demo_overrides, demo_pki, write_demo_tokens
from reference_server.config import CenterSettings, load_settings
from reference_server.context import ServerContext
from reference_server.security.tokens import TokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="session")


def demo_settings(base: Path, center_id: str) -> tuple[CenterSettings, TokenIssuer]:
    """Settings of a demo center on a free loopback port, as ``ansim serve --demo`` makes them."""
    pki = demo_pki(base)
    issuer = TokenIssuer.create(DEMO_ISSUER, base / "pki" / "token-issuer.key")
    overrides = demo_overrides(base, pki, issuer, False, "127.0.0.1:0")
    overrides.update(center_id=center_id, data_dir=base, listen="127.0.0.1:0")
    return load_settings(None, **overrides), issuer


async def start_demo_center(base: Path, center_id: str) -> tuple[CenterServer, dict[str, Path]]:
    settings, issuer = demo_settings(base, center_id)
    tokens = write_demo_tokens(settings, issuer)
    center = await CenterServer.create(
        settings, plugins.SERVICE_PLUGINS, demo_issuer=issuer, demo_seeds=plugins.DEMO_SEEDS
    )
    await center.start()
    return center, tokens


def new_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Names of the tasks still running that were not running at ``before``."""
    now = asyncio.all_tasks() - before - {asyncio.current_task()}
    return sorted(t.get_name() for t in now if not t.done())


def channel_to(center: CenterServer) -> grpc.aio.Channel:
    ca = Path(str(center.ctx.settings.tls.client_ca)).read_bytes()
    return grpc.aio.secure_channel(center.address, grpc.ssl_channel_credentials(ca))


async def raise_sos(center: CenterServer, tokens: dict[str, Path]) -> emergency_pb2.Emergency:
    token = tokens["APP_USER"].read_text(encoding="utf-8").strip()
    location = common_pb2.Location(latitude=37.5729, longitude=126.9794, radius_m=15)
    location.fix_time.FromDatetime(datetime.now(UTC))
    async with channel_to(center) as channel:
        return await emergency_pb2_grpc.EmergencyServiceStub(channel).RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent=center.ctx.settings.center_name,
                request_id=str(uuid.uuid4()),
                mode=common_pb2.MODE_TEST,
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                location=location,
            ),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )


def active_emergencies(center: CenterServer) -> float | None:
    labels = {"center": center.ctx.settings.center_name, "mode": "TEST"}
    return REGISTRY.get_sample_value("ansim_active_emergencies", labels)


async def test_stopped_center_leaves_no_background_work_in_a_shared_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = asyncio.all_tasks()
    first, first_tokens = await start_demo_center(tmp_path / "first", "lifecycle-first")
    second, second_tokens = await start_demo_center(tmp_path / "second", "lifecycle-second")
    try:
        await raise_sos(first, first_tokens)  # arms the SOS timers of the first center
        raised = await raise_sos(second, second_tokens)
        # One SOS each, counted per center (the registry is shared by the process).
        assert active_emergencies(first) == 1
        assert active_emergencies(second) == 1

        caplog.set_level(logging.WARNING)
        await first.stop()
        await asyncio.sleep(2.5)  # > two ticks of the child-safety scheduler (1 s)
        # The other center carries on (the same reporter's SOS is still the active one).
        assert (await raise_sos(second, second_tokens)).name == raised.name
        assert (active_emergencies(first), active_emergencies(second)) == (1, 1)
    finally:
        await first.stop()
        await second.stop()
    await asyncio.sleep(0.1)
    assert new_tasks(before) == []
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or "closed" in r.getMessage()]
    assert not problems, [(r.name, r.getMessage()) for r in problems]


def broken_plugin(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    raise RuntimeError("plugin failed to register")


async def test_center_that_fails_to_build_stops_what_its_plugins_started(tmp_path: Path) -> None:
    """A plugin failing after the others started their timers: nothing of the center keeps running
    in the process, and its store is closed (the same data directory opens again)."""
    settings, issuer = demo_settings(tmp_path / "broken", "lifecycle-broken")
    before = asyncio.all_tasks()
    with pytest.raises(RuntimeError, match="plugin failed to register"):
        await CenterServer.create(settings, [*plugins.SERVICE_PLUGINS, broken_plugin], demo_issuer=issuer)
    await asyncio.sleep(0.1)
    assert new_tasks(before) == []
    center = await CenterServer.create(settings, plugins.SERVICE_PLUGINS, demo_issuer=issuer)
    await center.stop()
    await asyncio.sleep(0.1)
    assert new_tasks(before) == []
