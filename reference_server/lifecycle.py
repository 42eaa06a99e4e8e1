"""The background work of one center, stopped as one before its store closes.

Plugins start their timers, schedulers and loops while they register (the store is open by then)
and hand them over: a bare task through ``ServerContext.background``, a component with its own stop
coroutine through :meth:`Lifecycle.on_stop`. :meth:`Lifecycle.stop` runs after the gRPC server has
stopped accepting calls and before the store closes, in three stages:

``loops``
    the producers of new work stop: tasks are cancelled and awaited, loop stop hooks run (store
    writes already begun complete, they are shielded);
``drain``
    work started for acknowledged calls finishes (newest registration first: a safe trip's duress
    SOS is raised before the routing of emergencies is drained);
``close``
    what the drained work still needed closes (federation channels).

The whole is bounded: what has not ended by the deadline is cancelled, logged and left behind, so a
stuck loop cannot hold the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

log = logging.getLogger("ansim.lifecycle")

StopHook = Callable[[], Awaitable[None]]
Stage = Literal["loops", "drain", "close"]


class Lifecycle:
    """Tasks and stop hooks of one center (several centers may share one process and loop)."""

    def __init__(self) -> None:
        self._hooks: dict[Stage, list[tuple[str, StopHook]]] = {"loops": [], "drain": [], "close": []}
        self._stopped = False

    def on_stop(self, name: str, hook: StopHook, stage: Stage = "loops") -> None:
        """Await ``hook()`` at shutdown in ``stage`` (see the module docstring)."""
        self._hooks[stage].append((name, hook))

    async def stop(self, bound_s: float, tasks: list[asyncio.Task[None]]) -> bool:
        """Cancel ``tasks`` and run the stop hooks within ``bound_s`` seconds; True when everything
        ended in time and without error."""
        if self._stopped:
            return True
        self._stopped = True
        deadline = time.monotonic() + bound_s
        clean = await self._cancel(tasks, deadline)
        clean = await self._run(self._hooks["loops"], deadline) and clean
        clean = await self._run(list(reversed(self._hooks["drain"])), deadline) and clean
        return await self._run(self._hooks["close"], deadline) and clean

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]], deadline: float) -> bool:
        running = [t for t in tasks if not t.done()]
        for task in running:
            task.cancel()
        pending: set[asyncio.Task[None]] = set()
        if running:
            _, pending = await asyncio.wait(running, timeout=max(deadline - time.monotonic(), 0.0))
        if pending:
            log.warning(
                "background tasks still running at shutdown",
                extra={"tasks": sorted(t.get_name() for t in pending)},
            )
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        for task in failed:
            log.warning("background task had failed", extra={"task": task.get_name()})
        return not pending and not failed

    @staticmethod
    async def _run(hooks: list[tuple[str, StopHook]], deadline: float) -> bool:
        clean = True
        for name, hook in hooks:
            try:
                await asyncio.wait_for(hook(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                clean = False
                log.warning("background stop timed out", extra={"component": name})
            except Exception:
                clean = False
                log.warning("background stop failed", extra={"component": name}, exc_info=True)
        return clean
