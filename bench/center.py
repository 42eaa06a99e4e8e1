"""A real demo center (``ansim serve --demo``) and the bench's echo server, as child processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import grpc.aio

from bench.procs import child_env


def _ensure_repo_on_path() -> None:
    from bench.core import REPO_ROOT

    for p in (str(REPO_ROOT), str(REPO_ROOT / "gen" / "python")):
        if p not in sys.path:
            sys.path.insert(0, p)


_ensure_repo_on_path()

from tests.support.center import CenterProcess, start_center  # noqa: E402


@contextmanager
def demo_center(data_dir: Path, *extra_args: str) -> Iterator[CenterProcess]:
    center = start_center(data_dir, *extra_args)
    try:
        yield center
    finally:
        center.terminate()


async def serving(center: CenterProcess, services: Sequence[str]) -> dict[str, bool]:
    """Which of ``services`` the center reports SERVING on grpc.health.v1."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    out: dict[str, bool] = {}
    async with center.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in services:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            except grpc.aio.AioRpcError:
                out[name] = False
            else:
                out[name] = reply.status == health_pb2.HealthCheckResponse.SERVING
    return out


def plugins_name_service(service: str) -> bool:
    """Cheap pre-check without starting a center: does reference_server/plugins.py register anything
    whose module mentions ``service``? (The health check on a running center is authoritative.)"""
    from reference_server import plugins

    for plugin in plugins.SERVICE_PLUGINS:
        module = sys.modules.get(getattr(plugin, "__module__", ""))
        source = getattr(module, "__file__", None)
        if source and service in Path(source).read_text(encoding="utf-8", errors="replace"):
            return True
    return False


@contextmanager
def echo_server(cert: Path | None, key: Path | None) -> Iterator[str]:
    """The bench's echo server in its own process; yields its address."""
    with echo_process(cert, key) as (address, _pid):
        yield address


@contextmanager
def echo_process(cert: Path | None, key: Path | None) -> Iterator[tuple[str, int]]:
    """The bench's echo server in its own process; yields its address and pid."""
    args = [sys.executable, "-m", "bench.echo"] + ([str(cert), str(key)] if cert and key else [])
    process = subprocess.Popen(args, env=child_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("ECHO_LISTENING "):
            raise RuntimeError(f"echo server did not start: {line!r}")
        yield line.split(" ", 1)[1], process.pid
    finally:
        process.terminate()
        process.wait(10)
