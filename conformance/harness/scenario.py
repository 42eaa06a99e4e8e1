"""The script a client under test follows: one step at a time, read by the vendor's test driver
(``GET /scenario``) or shown to a human operator on the console.

A step ends when the driver posts ``POST /done`` for it, or when the harness sees on the wire that
it is complete (so a human operator never has to tell it). The harness arms its faults per step;
the client is never told about them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FINISHED = "finished"


@dataclass
class Step:
    name: str
    #: What a human operator is told to do.
    instruction: str
    #: Parameters for a test driver (added to ``GET /scenario``); a callable is evaluated when read.
    params: dict[str, Any] | Callable[[], dict[str, Any]] = field(default_factory=dict)
    #: True once the wire shows the step complete (checked after every recorded event).
    complete: Callable[[], bool] | None = None
    #: Called when the step becomes current (arms faults that start with the step).
    on_start: Callable[[], None] | None = None

    def resolved_params(self) -> dict[str, Any]:
        return self.params() if callable(self.params) else dict(self.params)


class Scenario:
    """Steps in order; thread-safe (the control API runs in its own thread)."""

    def __init__(
        self,
        role: str,
        steps: list[Step],
        announce: Callable[[str], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.role = role
        self._clock = clock
        #: The clock's time when the last step ended (None while running).
        self.finished_at: float | None = None
        self.steps = steps
        self.index = 0
        self._lock = threading.RLock()
        self._announce = announce
        self._loop: asyncio.AbstractEventLoop | None = None
        self.finished = asyncio.Event()
        #: Log of (step, how it ended: "done" by the driver or "observed" on the wire).
        self.history: list[tuple[str, str]] = []

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the harness's event loop and start the first step (arming its faults)."""
        self._loop = loop
        announce, self._announce = self._announce, None
        self._started()
        self._announce = announce

    def bind_announce_current(self) -> None:
        """Tell the operator the current step (after the harness announced where it listens)."""
        step = self.current
        if step is not None and self._announce:
            self._announce(f"Step {self.index + 1}/{len(self.steps)} [{step.name}]: {step.instruction}")

    @property
    def current(self) -> Step | None:
        with self._lock:
            return self.steps[self.index] if self.index < len(self.steps) else None

    @property
    def current_name(self) -> str:
        step = self.current
        return step.name if step else FINISHED

    def describe(self) -> dict[str, Any]:
        """The body of ``GET /scenario``."""
        with self._lock:
            step = self.current
            if step is None:
                return {"role": self.role, "step": FINISHED}
            return {
                "role": self.role,
                "step": step.name,
                "index": self.index + 1,
                "of": len(self.steps),
                "instruction": step.instruction,
                **step.resolved_params(),
            }

    def done(self, name: str, how: str = "done") -> bool:
        """End step ``name`` if it is the current one; False when it is not (already ended)."""
        with self._lock:
            step = self.current
            if step is None or step.name != name:
                return False
            self.history.append((name, how))
            self.index += 1
        self._started()
        return True

    def poll(self) -> None:
        """End the current step when the wire shows it complete (called by the harness)."""
        step = self.current
        if step is not None and step.complete is not None and step.complete():
            self.done(step.name, "observed")

    def _started(self) -> None:
        step = self.current
        if step is None:
            if self.finished_at is None and self._clock is not None:
                self.finished_at = self._clock()
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.finished.set)
            if self._announce:
                self._announce("All steps done; evaluating.")
            return
        if step.on_start is not None:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(step.on_start)
            else:
                step.on_start()
        if self._announce:
            self._announce(f"Step {self.index + 1}/{len(self.steps)} [{step.name}]: {step.instruction}")
