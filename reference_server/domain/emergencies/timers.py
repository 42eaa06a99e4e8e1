"""The SOS timers: countdowns [EMG-009] and dispatch acknowledgement deadlines [DSP-006, DSP-007].

One asyncio task polls the two indexed due-lists every ``INTERVAL_S`` seconds (well inside the
1-second and 2-second bounds of the spec); it runs from plugin registration until shutdown cancels it.
"""

from __future__ import annotations

import asyncio
import logging

from reference_server.domain.emergencies.service import EmergencyDomain

log = logging.getLogger("ansim.emergency.timers")
INTERVAL_S = 0.2
REFRESH_EVERY = 300  # ticks (~1 minute) between expiry refreshes of connected dispatch scopes


async def run(domain: EmergencyDomain) -> None:
    clock = domain.ctx.clock
    try:
        await domain.init_metrics()
    except Exception:
        log.exception("could not initialise the emergency metrics")
    ticks = 0
    while True:
        try:
            now = clock.now()
            await domain.tick(now)
            await domain.dispatch.tick(now)
            ticks += 1
            if ticks % REFRESH_EVERY == 0:
                await domain.dispatch.subscriptions.refresh_connected()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("SOS timer tick failed")
        await asyncio.sleep(INTERVAL_S)
