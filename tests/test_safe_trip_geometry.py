"""Corridor geometry of spec §11.4 and the guardians' text message (TRIP-017)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ansim.v1 import common_pb2, safe_trip_pb2

from reference_server.domain.safe_trip.geometry import effective_radius, outside_corridor
from reference_server.domain.safe_trip.model import TripRecord, stamp
from reference_server.domain.safe_trip.notify import message_text
from reference_server.domain.safe_trip.timers import TripTimerConfig

LAT, LON = 37.5729, 126.9794
# A north-south route of about 1.1 km and a 100 m wide corridor (50 m each side).
CORRIDOR = safe_trip_pb2.RouteCorridor(
    polyline=[
        common_pb2.Point(latitude=LAT, longitude=LON),
        common_pb2.Point(latitude=LAT + 0.01, longitude=LON),
    ],
    width_m=100,
)
METRE_LON = 1 / (111_320 * 0.7934)  # degrees of longitude per metre at this latitude


def at(
    east_m: float,
    radius_m: float = 0.0,
    method: common_pb2.PositioningMethod.ValueType = common_pb2.POSITIONING_METHOD_GNSS,
) -> common_pb2.Location:
    return common_pb2.Location(
        latitude=LAT + 0.005, longitude=LON + east_m * METRE_LON, radius_m=radius_m, method=method
    )


def test_outside_means_beyond_half_width_plus_uncertainty() -> None:
    assert not outside_corridor(at(40, radius_m=5), CORRIDOR)
    assert not outside_corridor(at(54, radius_m=5), CORRIDOR)
    assert outside_corridor(at(57, radius_m=5), CORRIDOR)
    assert not outside_corridor(at(95, radius_m=0), CORRIDOR)  # GNSS without a radius: 50 m
    assert outside_corridor(at(105, radius_m=0), CORRIDOR)


def test_uncertainty_counts_at_most_100_m() -> None:
    assert effective_radius(at(0, radius_m=0, method=common_pb2.POSITIONING_METHOD_CELL)) == 100
    assert outside_corridor(at(155, radius_m=3000), CORRIDOR)
    assert not outside_corridor(at(145, radius_m=3000), CORRIDOR)


def test_beyond_the_ends_measures_to_the_endpoint() -> None:
    south = common_pb2.Location(latitude=LAT - 0.0004, longitude=LON, radius_m=1)  # ≈ 44 m south
    assert not outside_corridor(south, CORRIDOR)
    far_south = common_pb2.Location(latitude=LAT - 0.001, longitude=LON, radius_m=1)  # ≈ 111 m
    assert outside_corridor(far_south, CORRIDOR)


def test_text_message_names_no_place() -> None:
    now = datetime(2026, 3, 2, 13, 40, tzinfo=UTC)
    trip = safe_trip_pb2.SafeTrip(
        name="centers/c1/safeTrips/t-1",
        mode=common_pb2.MODE_LIVE,
        destination=common_pb2.Point(latitude=37.123456, longitude=126.654321),
        destination_address=common_pb2.CivicAddress(road_address="서울특별시 종로구 세종대로 175"),
        last_location=common_pb2.Location(latitude=37.5, longitude=126.9, fix_time=stamp(now)),
    )
    trip.profile.display_name = "지수"
    record = TripRecord(trip, "users/u-1", None, "", now, now)
    text = message_text(record, safe_trip_pb2.TRIP_ALERT_KIND_OVERDUE, "종로구 센터", "13:40")
    assert "지수" in text and "도착하지" in text
    for leak in ("37.", "126.", "세종대로", "종로구 세종"):
        assert leak not in text


def test_test_mode_timers_apply_only_to_test_trips_and_never_override_the_traveller() -> None:
    config = TripTimerConfig(
        timedelta(seconds=300),
        timedelta(minutes=5),
        timedelta(seconds=15),
        timedelta(seconds=5),
        timedelta(seconds=5),
    )
    live = config.for_request(safe_trip_pb2.StartSafeTripRequest(mode=common_pb2.MODE_LIVE))
    assert live.overdue_grace.ToTimedelta() == timedelta(minutes=10)
    assert live.location_silence.ToTimedelta() == timedelta(seconds=300)
    test = safe_trip_pb2.StartSafeTripRequest(mode=common_pb2.MODE_TEST)
    test.off_route_tolerance.FromTimedelta(timedelta(seconds=90))
    timers = config.for_request(test)
    assert timers.overdue_grace.ToTimedelta() == timedelta(seconds=5)
    assert timers.off_route_tolerance.ToTimedelta() == timedelta(seconds=90)
    assert timers.escalation_delay.ToTimedelta() == timedelta(seconds=5)
