"""Guardian case, server side (spec §15, §2.4): the replay of a fresh notification stream goes to
that call only. A recipient's streams share one subscription scope (a guardian on several devices,
the operators' copy read by many operators); a replay written into that scope would reach every
other open stream again and be stored as history."""

from __future__ import annotations

import asyncio
import itertools

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import guardian_pb2 as gd

from conformance import CaseContext, case, check
from conformance.cases.child_safety import PROFILE, build_world
from conformance.cases.emergency import Stream
from conformance.cases.guardian import sos

#: How long the already open stream is watched for a replay it must not receive.
QUIET_S = 2.5
#: How long the live ARRIVED_SCHOOL may take to reach both streams.
LIVE_S = 7.0
#: How long a stream is watched for a duplicate once the live event has arrived.
DRAIN_S = 1.0


async def arrivals(stream: Stream, within_s: float) -> list[gd.StreamNotificationsResponse]:
    """Every event of ``stream`` until ``within_s`` passes without one."""
    events: list[gd.StreamNotificationsResponse] = []
    while (event := await stream.poll(within_s)) is not None:
        events.append(event)
    return events


def is_arrival(event: gd.StreamNotificationsResponse) -> bool:
    return (
        event.change == gd.NOTIFICATION_CHANGE_CREATED
        and event.notification.event_kind == cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL
    )


async def until_arrival(stream: Stream) -> list[gd.StreamNotificationsResponse]:
    """The events of ``stream`` up to the live ARRIVED_SCHOOL (at most :data:`LIVE_S`), then those
    within :data:`DRAIN_S` after it."""
    events: list[gd.StreamNotificationsResponse] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIVE_S
    while (left := deadline - loop.time()) > 0 and (event := await stream.poll(left)) is not None:
        events.append(event)
        if is_arrival(event):
            return events + await arrivals(stream, DRAIN_S)
    return events


def contiguous(events: list[gd.StreamNotificationsResponse]) -> bool:
    return all(b.sequence == a.sequence + 1 for a, b in itertools.pairwise(events))


@case(
    "TC_GRD_015_SRV",
    title=(
        "A fresh stream's replay reaches only that call: another open stream of the same recipient "
        "gets no replay, and both get the next live event exactly once"
    ),
    requirements=["GRD-011", "GRD-012", "STM-001", "STM-002"],
    profile=PROFILE,
    kind="positive",
    timeout=30,
)
async def replay_only_to_new_call(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    first = await sos(world)
    stub = world.guardians()
    a = Stream(ctx, stub.StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian)))
    a_replay = await a.next(what="stream A's replay of the unacknowledged SOS [GRD-011]")
    check(a_replay.replay, f"stream A's first event must be its replay, got {a_replay} [GRD-011]")
    b = Stream(ctx, stub.StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian)))
    b_replay = await b.next(what="stream B's replay of the unacknowledged SOS [GRD-011]")
    check(
        b_replay.replay
        and b_replay.change == gd.NOTIFICATION_CHANGE_CREATED
        and b_replay.notification.name == first.name,
        f"stream B must first replay the unacknowledged SOS with CREATED, got {b_replay} [GRD-011]",
    )
    quiet = await arrivals(a, QUIET_S)
    check(
        not [e for e in quiet if e.replay],
        f"stream A received {len([e for e in quiet if e.replay])} replay event(s) when stream B "
        "subscribed; a replay belongs to the new call only [GRD-011, GRD-012]",
    )
    await world.submit(world.sighting(world.gate, direction=cs.SIGHTING_DIRECTION_INBOUND))
    a_later, b_later = await asyncio.gather(until_arrival(a), until_arrival(b))
    a_events, b_events = quiet + a_later, [b_replay, *b_later]
    for who, events in (("A", a_events), ("B", b_events)):
        live = [e for e in events if is_arrival(e)]
        check(
            len(live) == 1 and not live[0].replay,
            f"stream {who} got the live ARRIVED_SCHOOL {len(live)} times, expected once with "
            "replay=false [GRD-011, GRD-012]",
        )
        check(
            not [e for e in events if e.replay and e.notification.name == first.name][1:],
            f"stream {who} got the SOS replayed more than once [GRD-011]",
        )
    b_live = [e for e in b_events if not e.replay]
    check(
        contiguous([b_replay, *b_live]) and contiguous([a_replay, *[e for e in a_events if not e.replay]]),
        f"sequences must increase by exactly one: A {[a_replay.sequence] + [e.sequence for e in a_events]}, "
        f"B {[e.sequence for e in b_events]} [STM-001]",
    )
    resumed = Stream(
        ctx,
        stub.StreamNotifications(
            gd.StreamNotificationsRequest(parent=world.guardian, resume_cursor=b_replay.cursor)
        ),
    )
    after = await arrivals(resumed, DRAIN_S)
    check(
        [e.sequence for e in after] == [e.sequence for e in b_live] and not [e for e in after if e.replay],
        f"resuming from the replayed event's cursor must deliver the live events after it "
        f"{[e.sequence for e in b_live]}, got {[(e.sequence, e.replay) for e in after]} [STM-002]",
    )
