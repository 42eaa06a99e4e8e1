"""Guardian notifications (spec §15): one copy per recipient of each derived event, the escalation
ladder shared by all copies, acknowledgement, and the events of each recipient's stream."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, error_pb2
from ansim.v1 import guardian_pb2 as gd

from ansim_sdk.errors import AnsimError
from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.config import DEMO_DANGER_TEST_EXIT_ABSENCE, TimerSettings
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import OPERATORS, Queryable, from_ts, last_id, parse, to_ts
from reference_server.events.publisher import Event, Publisher
from reference_server.security.caller import Caller
from reference_server.store.interface import Transaction

log = logging.getLogger("ansim.child_safety")

D = cs
SEVERITY: dict[int, int] = {
    **{
        k: gd.NOTIFICATION_SEVERITY_INFO
        for k in (
            D.DERIVED_EVENT_KIND_ARRIVED_SCHOOL,
            D.DERIVED_EVENT_KIND_LEFT_SCHOOL,
            D.DERIVED_EVENT_KIND_HOME_IN,
            D.DERIVED_EVENT_KIND_HOME_OUT,
            D.DERIVED_EVENT_KIND_ACADEMY_IN,
            D.DERIVED_EVENT_KIND_ACADEMY_OUT,
            D.DERIVED_EVENT_KIND_LEFT_DANGER_ZONE,
            D.DERIVED_EVENT_KIND_LOW_BATTERY,
        )
    },
    D.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL: gd.NOTIFICATION_SEVERITY_WARNING,
    D.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE: gd.NOTIFICATION_SEVERITY_EMERGENCY,
    D.DERIVED_EVENT_KIND_SOS: gd.NOTIFICATION_SEVERITY_EMERGENCY,
    D.DERIVED_EVENT_KIND_BELL: gd.NOTIFICATION_SEVERITY_EMERGENCY,
}
#: The top rung per severity (§15.3, GRD-004).
TOP: dict[int, int] = {
    gd.NOTIFICATION_SEVERITY_INFO: gd.ESCALATION_LEVEL_GUARDIAN,
    gd.NOTIFICATION_SEVERITY_WARNING: gd.ESCALATION_LEVEL_CENTER,
    gd.NOTIFICATION_SEVERITY_EMERGENCY: gd.ESCALATION_LEVEL_POLICE_112,
}
SUMMARY: dict[int, str] = {
    D.DERIVED_EVENT_KIND_ARRIVED_SCHOOL: "학교 도착",
    D.DERIVED_EVENT_KIND_LEFT_SCHOOL: "학교 하교",
    D.DERIVED_EVENT_KIND_HOME_IN: "집 도착",
    D.DERIVED_EVENT_KIND_HOME_OUT: "집 출발",
    D.DERIVED_EVENT_KIND_ACADEMY_IN: "학원 도착",
    D.DERIVED_EVENT_KIND_ACADEMY_OUT: "학원 출발",
    D.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE: "위험지역 진입",
    D.DERIVED_EVENT_KIND_LEFT_DANGER_ZONE: "위험지역 이탈",
    D.DERIVED_EVENT_KIND_SOS: "긴급 버튼",
    D.DERIVED_EVENT_KIND_BELL: "비상벨",
    D.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL: "예정 시간 미도착",
    D.DERIVED_EVENT_KIND_LOW_BATTERY: "태그 배터리 부족",
}
MAX_LATE_ACKS = 20


def effective(party: int, current: int) -> bool:
    """Whether an acknowledgement from the ``party`` rung stops a ladder at ``current`` (§15.4):
    at or above it; an operator's (CENTER) also at POLICE_112, which has no party of its own
    (GRD-008). Anything else is too late (GRD-009)."""
    if party == gd.ESCALATION_LEVEL_CENTER:
        return current <= gd.ESCALATION_LEVEL_POLICE_112
    return party >= current


def stream_scope(recipient: str) -> str:
    """The event scope of a recipient's notification stream."""
    return f"{recipient}/notifications"


@dataclass
class Derived:
    """A derived event about to produce notifications."""

    id: str
    kind: int
    mode: int
    event_time: datetime
    ward: cs.Ward | None = None
    reader: str = ""
    zone: str = ""
    zone_display_name: str = ""
    location: common_pb2.Location | None = None
    tag: str = ""
    #: EmergencyKind to raise at once (SOS, BELL) — 0 for none.
    emergency_kind: int = 0
    #: School contacts of the bell pole's zone (BELL has no ward).
    bell_contacts: list[str] = field(default_factory=list)


class Notifier:
    def __init__(self, center: str, publisher: Publisher, timers: TimerSettings, demo: bool) -> None:
        self.center = center
        self.publisher = publisher
        self.timers = timers
        self.test_step = timers.guardian_test_step or (timedelta(seconds=5) if demo else None)
        #: The exit absence of danger zones for TEST-mode sightings [TAG-022]; None: the zone's.
        self.test_exit_absence = timers.danger_test_exit_absence or (
            DEMO_DANGER_TEST_EXIT_ABSENCE if demo else None
        )

    @property
    def operators(self) -> str:
        return f"{self.center}/guardians/{OPERATORS}"

    def step(self, severity: int, mode: int) -> timedelta:
        """The escalation step of a notification (GRD-005)."""
        if mode == common_pb2.MODE_TEST and self.test_step is not None:
            return self.test_step
        if severity == gd.NOTIFICATION_SEVERITY_WARNING:
            return self.timers.guardian_warning_step
        return self.timers.guardian_emergency_step

    # --- recipients per rung ------------------------------------------------------------------------

    async def _school_contacts(self, q: Queryable, derived_ward: str, bell_contacts: list[str]) -> list[str]:
        if not derived_ward:
            return list(bell_contacts)
        ward = await repository.load(q, derived_ward, cs.Ward)
        if ward is None:
            return []
        zone = await repository.load(q, ward.school_zone, cs.Zone)
        return list(zone.school_contacts) if zone is not None else []

    async def _recipients(
        self, q: Queryable, level: int, copy: gd.Notification, bell: list[str]
    ) -> list[str]:
        if level == gd.ESCALATION_LEVEL_GUARDIAN:
            ward = await repository.load(q, copy.ward, cs.Ward) if copy.ward else None
            return list(ward.guardians) if ward is not None else []
        if level == gd.ESCALATION_LEVEL_SCHOOL:
            return await self._school_contacts(q, copy.ward, bell)
        if level == gd.ESCALATION_LEVEL_CENTER:
            return [self.operators]
        return []

    async def _next_level(self, q: Queryable, level: int, copy: gd.Notification) -> int:
        nxt = level + 1
        if nxt == gd.ESCALATION_LEVEL_SCHOOL and not await self._school_contacts(q, copy.ward, []):
            nxt += 1
        return nxt

    # --- creation -----------------------------------------------------------------------------------

    async def create(self, tx: Transaction, d: Derived) -> list[gd.Notification]:
        """The copies of a derived event at its first rung, each announced CREATED (GRD-001)."""
        severity = SEVERITY[d.kind]
        template = gd.Notification(
            derived_event_id=d.id,
            ward=d.ward.name if d.ward is not None else "",
            ward_display_name=d.ward.display_name if d.ward is not None else "",
            event_kind=d.kind,  # type: ignore[arg-type]
            reader=d.reader,
            zone=d.zone,
            zone_display_name=d.zone_display_name[:100],
            severity=severity,  # type: ignore[arg-type]
            mode=d.mode,  # type: ignore[arg-type]
        )
        template.event_time.CopyFrom(to_ts(d.event_time))
        if d.location is not None:
            template.location.CopyFrom(d.location)
        name = d.ward.display_name if d.ward is not None else d.zone_display_name
        template.summary = f"{name}: {SUMMARY[d.kind]}".strip(": ")[:200]
        level: int = gd.ESCALATION_LEVEL_GUARDIAN
        recipients = await self._recipients(tx, level, template, d.bell_contacts)
        while not recipients and level < TOP[severity]:
            level = await self._next_level(tx, level, template) if d.ward is not None else level + 1
            recipients = await self._recipients(tx, level, template, d.bell_contacts)
        if not recipients:
            level = gd.ESCALATION_LEVEL_CENTER
            recipients = [self.operators]
        template.escalation_level = level  # type: ignore[assignment]
        deadline: datetime | None = None
        if severity != gd.NOTIFICATION_SEVERITY_INFO and level < TOP[severity]:
            deadline = tx.now + self.step(severity, d.mode)
            template.ack_deadline.CopyFrom(to_ts(deadline))
        template.create_time.CopyFrom(to_ts(tx.now))
        template.update_time.CopyFrom(to_ts(tx.now))
        await tx.execute(
            "INSERT INTO cs_alerts (derived_event_id, severity, level, "
            "ack_deadline, mode) VALUES (?, ?, ?, ?, ?)",
            (d.id, severity, level, to_rfc3339(deadline) if deadline else None, d.mode),
        )
        copies = []
        for recipient in recipients:
            copies.append(await self._add_copy(tx, template, recipient, level))
        return copies

    async def _add_copy(
        self, tx: Transaction, template: gd.Notification, recipient: str, level: int
    ) -> gd.Notification:
        copy = gd.Notification()
        copy.CopyFrom(template)
        copy.name = f"{recipient}/notifications/{template.derived_event_id}"
        copy.recipient_level = level  # type: ignore[assignment]
        copy.create_time.CopyFrom(to_ts(tx.now))
        copy.update_time.CopyFrom(to_ts(tx.now))
        await tx.execute(
            "INSERT INTO cs_notifications (name, recipient, derived_event_id, ward, created, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                copy.name,
                recipient,
                copy.derived_event_id,
                copy.ward,
                to_rfc3339(tx.now),
                copy.SerializeToString(),
            ),
        )
        await self._publish(tx, recipient, gd.NOTIFICATION_CHANGE_CREATED, copy)
        return copy

    async def _publish(self, tx: Transaction, recipient: str, change: int, copy: gd.Notification) -> None:
        item = gd.StreamNotificationsResponse(change=change, notification=copy)  # type: ignore[arg-type]
        await self.publisher.publish(tx, stream_scope(recipient), Event.of(item, copy.mode))

    # --- copies -------------------------------------------------------------------------------------

    async def copies(self, q: Queryable, derived_event_id: str) -> list[tuple[str, gd.Notification]]:
        rows = await q.fetchall(
            "SELECT recipient, body FROM cs_notifications WHERE derived_event_id = ? ORDER BY name",
            (derived_event_id,),
        )
        return [(r["recipient"], parse(gd.Notification, r["body"])) for r in rows]

    async def _save(self, tx: Transaction, copy: gd.Notification) -> None:
        copy.update_time.CopyFrom(to_ts(tx.now))
        await tx.execute(
            "UPDATE cs_notifications SET body = ? WHERE name = ?", (copy.SerializeToString(), copy.name)
        )

    async def change_all(self, tx: Transaction, derived_event_id: str, change: int, mutate: object) -> None:
        """Apply ``mutate(copy)`` to every copy, save it, and announce ``change`` to its recipient."""
        for recipient, copy in await self.copies(tx, derived_event_id):
            mutate(copy)  # type: ignore[operator]
            await self._save(tx, copy)
            await self._publish(tx, recipient, change, copy)

    async def link_emergency(self, tx: Transaction, derived_event_id: str, emergency: str) -> None:
        """Set ``related_emergency`` on all copies and announce EMERGENCY_LINKED (GRD-006)."""

        def link(copy: gd.Notification) -> None:
            copy.related_emergency = emergency

        existing = await self.copies(tx, derived_event_id)
        if existing and all(c.related_emergency == emergency for _, c in existing):
            return
        await self.change_all(tx, derived_event_id, gd.NOTIFICATION_CHANGE_EMERGENCY_LINKED, link)

    # --- escalation ---------------------------------------------------------------------------------

    async def escalate(self, tx: Transaction, derived_event_id: str) -> int:
        """Move the notification one rung up (GRD-003); returns the new level (0: nothing done)."""
        alert = await tx.fetchone("SELECT * FROM cs_alerts WHERE derived_event_id = ?", (derived_event_id,))
        if alert is None or alert["ack_deadline"] is None:
            return 0
        severity, level = int(alert["severity"]), int(alert["level"])
        existing = await self.copies(tx, derived_event_id)
        if not existing or level >= TOP[severity]:
            await tx.execute(
                "UPDATE cs_alerts SET ack_deadline = NULL WHERE derived_event_id = ?", (derived_event_id,)
            )
            return 0
        template = existing[0][1]
        new_level = await self._next_level(tx, level, template)
        passed = from_rfc3339(alert["ack_deadline"])
        deadline = None if new_level >= TOP[severity] else passed + self.step(severity, int(alert["mode"]))
        await tx.execute(
            "UPDATE cs_alerts SET level = ?, ack_deadline = ? WHERE derived_event_id = ?",
            (new_level, to_rfc3339(deadline) if deadline else None, derived_event_id),
        )

        def move(copy: gd.Notification) -> None:
            copy.escalation_level = new_level  # type: ignore[assignment]
            copy.escalate_time.CopyFrom(to_ts(tx.now))
            copy.ClearField("ack_deadline")
            if deadline is not None:
                copy.ack_deadline.CopyFrom(to_ts(deadline))

        await self.change_all(tx, derived_event_id, gd.NOTIFICATION_CHANGE_ESCALATED, move)
        have = {r for r, _ in existing}
        fresh = await self.copies(tx, derived_event_id)
        template = fresh[0][1]
        for recipient in await self._recipients(tx, new_level, template, []):
            if recipient not in have:
                await self._add_copy(tx, template, recipient, new_level)
        return new_level

    async def due(self, q: Queryable, now: datetime) -> list[str]:
        rows = await q.fetchall(
            "SELECT derived_event_id FROM cs_alerts WHERE ack_deadline IS NOT NULL AND ack_deadline <= ?",
            (to_rfc3339(now),),
        )
        return [str(r["derived_event_id"]) for r in rows]

    # --- reads and acknowledgement ------------------------------------------------------------------

    def check_owner(self, caller: Caller, recipient: str) -> None:
        """GRD-010 / GRD-013: a guardian reads only their own copies, an operator only the operators'."""
        if caller.role == common_pb2.ROLE_CENTER_OPERATOR:
            ok = recipient == self.operators
        else:
            ok = (
                recipient == f"{self.center}/guardians/{caller.subject.removeprefix('guardians/')}"
                and caller.subject.startswith("guardians/")
                and last_id(recipient) != OPERATORS
            )
        if not ok:
            raise AnsimError(error_pb2.ERROR_REASON_NOT_OWNER, "these notifications are not yours")

    async def get(self, q: Queryable, caller: Caller, name: str) -> gd.Notification:
        row = await q.fetchone("SELECT recipient, body FROM cs_notifications WHERE name = ?", (name,))
        if row is None:
            raise AnsimError(error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{name} does not exist")
        self.check_owner(caller, str(row["recipient"]))
        return parse(gd.Notification, row["body"])

    async def acknowledge(
        self, tx: Transaction, caller: Caller, name: str, note: str
    ) -> tuple[gd.Notification, bool]:
        """Acknowledge a copy; returns (the caller's copy, effective). A late acknowledgement is
        recorded on all copies (GRD-009) and reported as not effective."""
        copy = await self.get(tx, caller, name)
        if copy.HasField("acknowledged_by"):
            return copy, True
        alert = await tx.fetchone(
            "SELECT level FROM cs_alerts WHERE derived_event_id = ?", (copy.derived_event_id,)
        )
        current = int(alert["level"]) if alert is not None else copy.escalation_level
        party = copy.recipient_level
        subject = caller.to_subject()
        if effective(party, current) or copy.severity == gd.NOTIFICATION_SEVERITY_INFO:
            await tx.execute(
                "UPDATE cs_alerts SET ack_deadline = NULL WHERE derived_event_id = ?",
                (copy.derived_event_id,),
            )

            def ack(c: gd.Notification) -> None:
                c.acknowledged_by.CopyFrom(subject)
                c.acknowledge_time.CopyFrom(to_ts(tx.now))
                c.ClearField("ack_deadline")

            await self.change_all(tx, copy.derived_event_id, gd.NOTIFICATION_CHANGE_ACKNOWLEDGED, ack)
            return await self.get(tx, caller, name), True
        already = any(
            a.subject.id == subject.id and a.party_level == party for a in copy.late_acknowledgements
        )
        if not already and len(copy.late_acknowledgements) < MAX_LATE_ACKS:
            late = gd.Acknowledgement(subject=subject, party_level=party, note=note)
            late.acknowledge_time.CopyFrom(to_ts(tx.now))

            def add_late(c: gd.Notification) -> None:
                c.late_acknowledgements.append(late)

            await self.change_all(
                tx, copy.derived_event_id, gd.NOTIFICATION_CHANGE_LATE_ACKNOWLEDGED, add_late
            )
        return await self.get(tx, caller, name), False

    def unacknowledged(self, copy: gd.Notification) -> bool:
        return copy.severity != gd.NOTIFICATION_SEVERITY_INFO and not copy.HasField("acknowledged_by")


def deadline_of(copy: gd.Notification) -> datetime | None:
    return from_ts(copy.ack_deadline) if copy.HasField("ack_deadline") else None
