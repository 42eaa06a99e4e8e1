"""Issue 6 §7: an SOS forwarded between two centers against a same-center SOS.

A national directory and two centers (종로구 and 중구, each its real 2018 boundary as service area,
each in its own process) are started and registered as ``ansim demo --national`` does
(:class:`reference_server.demo.national.National`, mutual TLS between the centers). Every SOS is
raised by an app at 종로구 (the home center): the forwarded one from a point in 중구, which 종로구
resolves with the directory and hands over by federation [FED-012]; the baseline one from a point
in 종로구, handled at home. The two kinds alternate, one SOS at a time. The figure is the one the
national demo reports as end to end: the app's RaiseEmergency call → the 112 dispatch's
``request_time`` at the handling center, taken from the center's own timestamp (one machine, one
clock), once the home center's view shows the handling center (watched at home).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.core import Context, Row, median, percentile

HOME = "11010"  # 종로구
OTHER = "11020"  # 중구
SEED = 2026
#: Pause between "both centers up" and the first SOS (as the national demo does).
SETTLE_S = 1.0


def _points(code: str, count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    from reference_server.demo.entries import municipalities
    from reference_server.geo.sampling import random_points_in

    lons, lats = random_points_in(municipalities()[code].geometry, count, rng)
    return [(float(lat), float(lon)) for lat, lon in zip(lats, lons, strict=True)]


async def _measure(root: Path, rounds: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    from reference_server.demo.cluster import Cluster
    from reference_server.demo.national import National
    from reference_server.demo.national_sos import Sos

    rng = np.random.default_rng(SEED)
    away, here = _points(OTHER, rounds, rng), _points(HOME, rounds, rng)
    national = National(Cluster.create(root), [HOME, OTHER])
    out: dict[str, list[float]] = {"forwarded": [], "local": []}
    errors: list[str] = []
    try:
        await national.start_directory()
        await national.register()
        await national.start_centers(per_process=1)
        await asyncio.sleep(SETTLE_S)  # the centers' first registry loads
        simulator = national.simulator()
        index = 0
        for r in range(rounds):
            kinds = [("forwarded", away[r], OTHER), ("local", here[r], HOME)]
            for kind, (lat, lon), truth in kinds if r % 2 == 0 else kinds[::-1]:
                outcome = await simulator.run(Sos(index, HOME, lat, lon, truth))
                index += 1
                if outcome.correct and outcome.end_to_end_s is not None:
                    out[kind].append(outcome.end_to_end_s)
                else:
                    errors.append(f"{kind}: {outcome.error or 'handled by ' + outcome.handled_by}")
    finally:
        await national.stop()
    if errors:
        log(f"routing.forwarded: {len(errors)} SOS not handled as expected, first: {errors[0]}")
    return out


def forwarded_vs_local(ctx: Context) -> Row:
    rounds = 5 if ctx.sizes.quick else 20
    with tempfile.TemporaryDirectory(prefix="bench-forwarding-", dir=ctx.workdir) as root:
        got = asyncio.run(_measure(Path(root), rounds, ctx.log))
    forwarded, local = got["forwarded"], got["local"]
    name = "routing.forwarded SOS vs same-center SOS, raise → 112 dispatch at the handling center, p50"
    if not forwarded or not local:
        return Row(
            name, None, "", status="error", note=f"{len(forwarded)} forwarded, {len(local)} local handled"
        )
    ms = 1e3
    note = (
        f"p99 {percentile(forwarded, 99) * ms:.1f} vs {percentile(local, 99) * ms:.1f} ms;"
        f" {len(forwarded)}+{len(local)} SOS of {rounds}+{rounds}"
    )
    return Row(
        name,
        median(forwarded) * ms,
        "ms",
        median(local) * ms,
        "same-center SOS",
        note=note,
        extra={
            "forwarded_p99_ms": percentile(forwarded, 99) * ms,
            "local_p99_ms": percentile(local, 99) * ms,
            "forwarded_n": len(forwarded),
            "local_n": len(local),
        },
    )
