"""Wait for a launched child process to announce that it is ready (shared by :mod:`.hosts` and
:mod:`.cluster`)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time


async def wait_until_ready(
    popen: subprocess.Popen[str],
    ready: threading.Event,
    name: str,
    timeout: float,  # noqa: ASYNC109
    poll_s: float,
) -> None:
    """Return once ``ready`` is set; raise if ``popen`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not ready.is_set():
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with code {popen.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start within {timeout} s")
        await asyncio.sleep(poll_s)
