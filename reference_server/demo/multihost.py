"""Several reference centers in one process, for the national simulation (``ansim demo --national``).

    python -m reference_server.demo.multihost CONFIG [CONFIG ...]

Each config file is one complete center, exactly as ``ansim serve --config`` would run it: its own
``grpc.aio`` server (TLS and mutual-TLS listeners), its own embedded store, its own certificate pair
and its own federation engine. Only the process, the event loop and the Prometheus registry are
shared. Centers talk to each other and to the directory over real gRPC, never in memory.

Machine-readable lines on stdout, one per center, then one when all are up and have loaded their
registry from the directory:

    ANSIM_CENTER centers/m11010 127.0.0.1:40001 127.0.0.1:40002
    ANSIM_READY

SIGTERM / SIGINT stops every center gracefully. Logs are JSON lines on stderr, WARNING and above
(with dozens of centers per process, per-call INFO lines would cost more than the calls) unless
``ANSIM_MULTIHOST_LOG_LEVEL`` names another level (e.g. INFO, to diagnose a run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from ansim.v1 import directory_pb2

from reference_server import plugins
from reference_server.app import CenterServer
from reference_server.config import ConfigError, load_settings
from reference_server.domain.directory.resolver import serving_agencies
from reference_server.interceptors.logging import configure_json_logging


async def start_center(config: Path) -> CenterServer:
    settings = load_settings(config)
    center = await CenterServer.create(settings, plugins.SERVICE_PLUGINS)
    await center.start()
    return center


def warm_up() -> None:
    """Load what every center of the process shares once (the municipality index of the agency
    lookup, a few seconds of CPU) before the first SOS would stall the whole process with it."""
    serving_agencies(directory_pb2.CenterEntry(), 37.5729, 126.9794)


async def federation_started(center: CenterServer) -> None:
    """Wait until the center's federation engine has loaded its registry from the directory (the
    start task the federation plugin leaves in the domain; it never raises)."""
    task = center.ctx.domain.extra.get("federation_start")
    if isinstance(task, asyncio.Task):
        await task


async def host(configs: list[Path]) -> None:
    warm_up()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    centers: list[CenterServer] = []
    try:
        for config in configs:  # one by one: start-up is CPU-bound, and a bad config stops early
            center = await start_center(config)
            centers.append(center)
            name = center.ctx.settings.center_name
            print(f"ANSIM_CENTER {name} {center.address} {center.mtls_address or '-'}", flush=True)
        await asyncio.gather(*(federation_started(center) for center in centers))
        print("ANSIM_READY", flush=True)
        await stopping.wait()
    finally:
        await asyncio.gather(*(center.stop() for center in centers), return_exceptions=True)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m reference_server.demo.multihost CONFIG [CONFIG ...]", file=sys.stderr)
        return 2
    level = os.environ.get("ANSIM_MULTIHOST_LOG_LEVEL", "WARNING").upper()
    configure_json_logging(logging.getLevelNamesMapping().get(level, logging.WARNING))
    try:
        asyncio.run(host([Path(arg) for arg in argv]))
    except ConfigError as error:
        print(f"multihost: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
