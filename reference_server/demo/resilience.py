"""Resilience: kill -9 any one process of the federation mid-scenario and lose no SOS.

For each target in turn — the directory, each peer center (안양, 금천, 해운대) and the app's home
center (종로) — the scenario kills the process with SIGKILL, lets a 종로 resident's app press SOS
once in each center's area (APP-001: one request_id per press, resent while the home center cannot
answer), restarts the killed process on its data directory and ports as a supervisor would, and
then checks the ledger (:mod:`reference_server.demo.ledger`): every acknowledged press is one
emergency at home, handled by exactly one center — the responsible one — and dispatched to that
region's 112.

- *directory*: the centers keep their registry (DIR-021) and route from cached answers (DIR-019,
  DIR-020); the presses made just before the kill warm those answers, the presses made while it is
  down must not fall back.
- *a peer center*: its press falls back at home within 5 s, dispatched to the home center's own
  112 (FED-014), and once the center is back the recovery forward moves it there and supersedes
  the home dispatch (FED-015); the other presses go straight to their centers.
- *the home center*: it is killed while presses are in flight — the first answered one is
  mid-routing and must be routed after the restart, the others are cut off — and presses made while
  it is down are resent until it answers; no press may become two emergencies (EMG-003).

Every target also counts the app SOS emergencies at home: N presses add exactly N.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ansim.v1 import directory_pb2

from reference_server.demo.cluster import Cluster, Process
from reference_server.demo.ledger import Entry, Views, settle
from reference_server.demo.presses import HOME, REGIONS, Press, Region, new_press, send
from reference_server.demo.runner import Demo
from reference_server.domain.directory.signing import verify_answer

#: How long the ledger may take to settle after a restart (recovery runs every 2 s, doubling).
SETTLE_S = 14.0
#: The home center's own 112, where its fallback dispatches go (FED-014).
FALLBACK_AGENCY = "agencies/seoul-112"
#: How long a killed home center stays down while the app keeps resending.
HOME_DOWN_S = 1.0


class Resilience:
    """The targets, played one after the other against one running demo federation."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        #: SOS emergencies at home before the first press, and the presses made since.
        self.baseline: int | None = None
        self.pressed = 0

    async def count_from_here(self) -> None:
        """Start a target: the emergencies at home now, no presses yet."""
        views = Views(self.demo)
        try:
            self.baseline, self.pressed = await views.raised_at_home(), 0
        finally:
            await views.close()

    @property
    def cluster(self) -> Cluster:
        return self.demo.cluster

    # -- processes --------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self.cluster.processes[name].kill()
        where = "directory" if name == "directory" else f"centers/{name}"
        self.demo.timeline.add(where, "ops", "process killed (SIGKILL) mid-scenario")

    async def restart(self, name: str) -> Process:
        began = time.monotonic()
        process = self.cluster.restart(name)
        await process.wait_ready()
        if name == "directory":
            self.demo.directory = process
        else:
            self.demo.centers[name] = process
        where = "directory" if name == "directory" else f"centers/{name}"
        self.demo.timeline.add(
            where,
            "ops",
            f"restarted by its supervisor: same store, same ports ({process.mtls_address})",
            (time.monotonic() - began) * 1000,
        )
        return process

    # -- the app ----------------------------------------------------------------------------

    async def press_all(self, tag: str, where: Sequence[str] | None = None) -> list[Press]:
        """One press in each center's area (or in those of ``where``), at once, each resent until
        acknowledged [APP-001]."""
        address = self.cluster.processes[HOME].address
        regions = [r for r in REGIONS if where is None or r.center_id in where]
        presses = [self.new_press(region, tag) for region in regions]
        await asyncio.gather(*(send(self.cluster, address, p) for p in presses))
        for press in presses:
            self.demo.timeline.add(
                f"centers/{HOME}",
                "app",
                f"SOS {press.region.label} ({tag}) → {press.name}"
                f" after {press.attempts} attempt(s), one request_id",
                (press.acknowledged - press.began) * 1000,
            )
        return presses

    def new_press(self, region: Region, tag: str) -> Press:
        self.pressed += 1
        return new_press(self.cluster, region, tag)

    async def fallback_seen(self, press: Press) -> float:
        """Seconds from the acknowledgement until the home center dispatched it itself [FED-014]."""
        views = Views(self.demo)
        try:

            async def dispatched() -> list[str]:
                return [d.agency for d in await views.dispatches(HOME, press.name)]

            agencies = await self.demo.eventually(
                dispatched, f"the fallback of {press.region.label} at home", 5.5
            )
            elapsed = time.monotonic() - press.acknowledged
            seen = await views.emergency(HOME, press.name)
        finally:
            await views.close()
        # The home center has no dispatch connection to another region's 112: its own [FED-014].
        ok = elapsed <= 5.0 and agencies == [FALLBACK_AGENCY]
        self.demo.timeline.add(
            f"centers/{HOME}",
            "emergency",
            f"{press.region.label}: {seen.status_note}; dispatched to {', '.join(agencies)}",
            elapsed * 1000,
            ok=ok,
        )
        if not ok:
            raise AssertionError(f"fallback after {elapsed:.1f} s to {agencies}, not {FALLBACK_AGENCY}")
        return elapsed

    # -- the ledger -------------------------------------------------------------------------

    async def ledger(
        self, presses: Sequence[Press], must_fall_back: Callable[[Press], bool | None]
    ) -> list[Entry]:
        entries = await asyncio.gather(*(settle(self.demo, p, SETTLE_S) for p in presses))
        if self.baseline is not None:  # no press became two emergencies (APP-001, EMG-003)
            views = Views(self.demo)
            try:
                held = await views.raised_at_home()
            finally:
                await views.close()
            if held - self.baseline != self.pressed:
                raise AssertionError(
                    f"{self.pressed} presses, {held - self.baseline} new emergencies at home"
                )
        for entry in entries:
            expected = must_fall_back(entry.press)
            ok = expected is None or expected == entry.fell_back
            self.demo.timeline.add(
                entry.press.region.center,
                "ledger",
                f"incident {entry.press.incident_id}: {entry.describe()}",
                ok=ok,
            )
            if not ok:
                raise AssertionError(
                    f"{entry.press.region.label}: fallback {'expected' if expected else 'not expected'}"
                )
        return list(entries)

    # -- the targets ------------------------------------------------------------------------

    async def directory_down(self) -> str:
        await self.count_from_here()
        before = await self.press_all("before")
        await self.ledger(before, lambda p: None)  # each location has a cached, signed answer at home
        self.kill("directory")
        during = await self.press_all("directory down")
        restarting = asyncio.ensure_future(self.restart("directory"))
        try:  # while it is down: cached answers and the last registry [DIR-019, DIR-020, DIR-021]
            await self.ledger(during, lambda p: False)
        finally:
            await restarting
        await self.directory_intact()
        return (
            f"{len(before) + len(during)} presses, none lost; routed from cached answers while down;"
            " restarted directory signs with the same keys"
        )

    async def directory_intact(self) -> None:
        """The restarted directory answers from its store with the keys the centers hold [DIR-017]."""
        region = REGIONS[0]
        response = await self.demo.directory_stub().ResolveCenter(
            directory_pb2.ResolveCenterRequest(
                location=self.demo.loc(region.latitude, region.longitude, region.radius_m), service="sos"
            ),
            metadata=self.demo.admin(),
            timeout=3,
        )
        answer = verify_answer(response, self.demo.keys)
        got = [c.center for c in answer.candidates]
        self.demo.timeline.add(
            "directory", "resolver", f"after the restart: {region.label} → {got}; signature verified"
        )
        if got != [region.center]:
            raise AssertionError(f"the restarted directory resolved {region.label} to {got}")

    async def peer_down(self, center_id: str) -> str:
        await self.count_from_here()
        self.kill(center_id)
        presses = await self.press_all(f"{center_id} down")
        victim = next(p for p in presses if p.region.center_id == center_id)
        elapsed = await self.fallback_seen(victim)
        await self.restart(center_id)
        await self.ledger(presses, lambda p: p is victim if p.region.center_id != HOME else None)
        return (
            f"{len(presses)} presses, none lost; fallback at home after {elapsed:.1f} s,"
            f" recovered to {center_id}, home dispatch SUPERSEDED"
        )

    async def home_down(self) -> str:
        """Killed while presses are in flight: some answered (and mid-routing), some cut off."""
        await self.count_from_here()
        address = self.cluster.processes[HOME].address
        cut = [self.new_press(region, "in flight") for region in REGIONS]
        first = [asyncio.ensure_future(send(self.cluster, address, p)) for p in cut]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        self.kill(HOME)
        during = [self.new_press(region, "home down") for region in REGIONS]
        sending = asyncio.gather(*first, *(send(self.cluster, address, p) for p in during))
        try:
            await asyncio.sleep(HOME_DOWN_S)
            await self.restart(HOME)
        except BaseException:
            sending.cancel()
            raise
        await sending
        for press in [*cut, *during]:
            self.demo.timeline.add(
                f"centers/{HOME}",
                "app",
                f"SOS {press.region.label} → {press.name} after {press.attempts} attempt(s)"
                " with one request_id",
                (press.acknowledged - press.began) * 1000,
                ok=press.attempts > 1 or press in cut,
            )
        if any(p.attempts < 2 for p in during):
            raise AssertionError("a press made while the home center was down was answered at once")
        await self.ledger([*cut, *during], lambda p: None)
        retries = sum(p.attempts - 1 for p in [*cut, *during])
        cut_off = sum(1 for p in cut if p.attempts > 1)
        return (
            f"{len(cut) + len(during)} presses ({cut_off} cut off by the kill), none lost, none doubled;"
            f" resent {retries} times with their request_id until it answered"
        )


PEERS = (
    ("anyang", "centers/anyang (visitor's responsible center)"),
    ("seoul-geumcheon", "centers/seoul-geumcheon"),
    ("busan-haeundae", "centers/busan-haeundae"),
)


def scenario_name(label: str) -> str:
    return f"resilience: kill -9 {label}, no SOS lost"


async def play_targets(demo: Demo) -> None:
    """Every target as its own scenario (one summary line each), one after the other: a restart is
    CPU-bound, so restarting several processes at once would not be quicker on a small machine."""
    resilience = Resilience(demo)
    await demo.scenario(scenario_name("the directory"), resilience.directory_down)
    for center_id, label in PEERS:
        await demo.scenario(scenario_name(label), functools.partial(resilience.peer_down, center_id))
    await demo.scenario(scenario_name("centers/seoul-jongno (the app's home center)"), resilience.home_down)


async def play_resilience(root: Path) -> Demo:
    """``ansim demo --only resilience``: start the federation and play only these targets."""
    demo = Demo(Cluster.create(root))
    try:
        await demo.start()
        await play_targets(demo)
    finally:
        await demo.stop()
    return demo
