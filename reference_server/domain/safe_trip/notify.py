"""Telling guardians that a trip alerts (spec §11.5, TRIP-007, TRIP-017).

A guardian with a ``phone`` gets a text message, written to the center's SMS outbox
(``st_messages``; a deployment's SMS gateway drains it); a guardian with a ``subject_id`` gets the
ALERT_RAISED event on WatchSafeTrip, which the caller publishes. A text message says who, what and
when, and the center's name to call — never where she is (TRIP-017).
"""

from __future__ import annotations

from ansim.v1 import safe_trip_pb2

from reference_server.clock import to_rfc3339
from reference_server.domain.safe_trip.model import TripRecord
from reference_server.store.interface import Transaction

S = safe_trip_pb2
_WHAT: dict[int, str] = {
    S.TRIP_ALERT_KIND_OVERDUE: "예정 시각까지 도착하지 않았습니다",
    S.TRIP_ALERT_KIND_OFF_ROUTE: "예정 경로를 벗어났습니다",
    S.TRIP_ALERT_KIND_LOCATION_LOST: "위치 확인이 되지 않습니다",
    S.TRIP_ALERT_KIND_HELP_REQUESTED: "도움을 요청했습니다",
}


def message_text(record: TripRecord, kind: int, center_display_name: str, when: str) -> str:
    """The text message (no location, address or route: TRIP-017)."""
    who = record.trip.profile.display_name or "안심귀가 이용자"
    what = _WHAT.get(int(kind), "확인이 필요합니다")
    test = "[시험] " if record.trip.mode == 3 else ""
    return (
        f"{test}[안심귀가] {who} 님이 {what} ({when} UTC). "
        f"연락해 보시고, 문의는 {center_display_name}로 해 주십시오."
    )


async def tell_guardians(tx: Transaction, record: TripRecord, kind: int, center_display_name: str) -> int:
    """Queue a text message per guardian phone; return the number of guardians told (all of them:
    those with a subject get the stream event)."""
    when = to_rfc3339(tx.now)[11:16]
    text = message_text(record, kind, center_display_name, when)
    for guardian in record.trip.guardians:
        if guardian.phone:
            await tx.execute(
                "INSERT INTO st_messages (trip, phone, body, sent, mode) VALUES (?, ?, ?, ?, ?)",
                (record.name, guardian.phone, text, to_rfc3339(tx.now), record.trip.mode),
            )
    return len(record.trip.guardians)
