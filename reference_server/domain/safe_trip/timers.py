"""The timers in force for a trip (spec §11.4, TRIP-003)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ansim.v1 import common_pb2, safe_trip_pb2
from google.protobuf import duration_pb2

from reference_server.config import TimerSettings

DEFAULT_OVERDUE_GRACE = timedelta(minutes=10)
DEFAULT_OFF_ROUTE_TOLERANCE = timedelta(seconds=120)
#: What a ``--demo`` center uses for TEST-mode trips unless configured (a whole escalation in well
#: under a minute; the location silence is longer so that trips of a conformance run do not all
#: alert while a case is still setting them up).
DEMO_TEST_TIMERS = {
    "location_silence": timedelta(seconds=15),
    "escalation_delay": timedelta(seconds=5),
    "overdue_grace": timedelta(seconds=5),
    "off_route_tolerance": timedelta(seconds=5),
}


def duration(value: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


@dataclass(frozen=True)
class TripTimerConfig:
    """The deployment's timer configuration for trips."""

    location_silence: timedelta
    escalation_delay: timedelta
    test_location_silence: timedelta | None = None
    test_escalation_delay: timedelta | None = None
    test_overdue_grace: timedelta | None = None
    test_off_route_tolerance: timedelta | None = None

    @classmethod
    def from_settings(cls, timers: TimerSettings, *, demo: bool = False) -> TripTimerConfig:
        def test(name: str) -> timedelta | None:
            value: timedelta | None = getattr(timers, f"trip_test_{name}")
            return value if value is not None or not demo else DEMO_TEST_TIMERS[name]

        return cls(
            timers.trip_location_silence,
            timers.trip_escalation_delay,
            test("location_silence"),
            test("escalation_delay"),
            test("overdue_grace"),
            test("off_route_tolerance"),
        )

    def for_request(self, request: safe_trip_pb2.StartSafeTripRequest) -> safe_trip_pb2.TripTimers:
        """The timers of a new trip: the traveller's choices, else the defaults (TEST-mode values for
        a TEST trip when configured)."""
        test = request.mode == common_pb2.MODE_TEST
        grace = DEFAULT_OVERDUE_GRACE
        tolerance = DEFAULT_OFF_ROUTE_TOLERANCE
        silence, delay = self.location_silence, self.escalation_delay
        if test:
            grace = self.test_overdue_grace or grace
            tolerance = self.test_off_route_tolerance or tolerance
            silence = self.test_location_silence or silence
            delay = self.test_escalation_delay or delay
        if request.HasField("overdue_grace"):
            grace = request.overdue_grace.ToTimedelta()
        if request.HasField("off_route_tolerance"):
            tolerance = request.off_route_tolerance.ToTimedelta()
        return safe_trip_pb2.TripTimers(
            overdue_grace=duration(grace),
            off_route_tolerance=duration(tolerance),
            location_silence=duration(silence),
            escalation_delay=duration(delay),
        )
