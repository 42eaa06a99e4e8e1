"""Small-count and complementary suppression (spec §18.3) and the before/after rates (§18.4)."""

from __future__ import annotations

from ansim.v1 import statistics_pb2

from reference_server.domain.statistics import calendar
from reference_server.domain.statistics.queries import _row
from reference_server.domain.statistics.suppression import suppress


def one_line(counts: list[int]) -> list[bool]:
    return suppress([(i,) for i in range(len(counts))], counts)


def test_spec_example_suppresses_b_and_then_c() -> None:
    # 안양, March: A 23, B 3, C 6, others 0 → B (primary) and C (smallest other non-zero).
    assert one_line([23, 3, 6, 0, 0, 0]) == [False, True, True, False, False, False]


def test_zero_is_never_marked_and_a_line_without_candidates_stays() -> None:
    assert one_line([0, 3, 0]) == [False, True, False]
    assert one_line([0, 0, 0]) == [False, False, False]


def test_two_small_marked_adding_below_k_pull_in_a_third() -> None:
    # 1 + 2 = 3 < 5 → the smallest unmarked non-zero (7) joins them.
    assert one_line([1, 2, 9, 7]) == [True, True, False, True]
    # 2 + 3 = 5 ≥ 5 → nothing more.
    assert one_line([2, 3, 9, 7]) == [True, True, False, False]


def test_ties_take_the_first_bucket_and_big_counts_publish() -> None:
    assert one_line([8, 3, 8]) == [True, True, False]
    assert one_line([5, 6, 100]) == [False, False, False]


def test_two_dimensional_lines_reach_a_fixed_point() -> None:
    # kinds × two windows; one small cell forces partners in its row and in its column.
    cells = [(k, w) for k in (1, 2, 3) for w in (0, 1)]
    counts = [10, 2, 8, 9, 6, 7]
    marked = dict(zip(cells, suppress(cells, counts), strict=True))
    assert marked[(1, 1)]
    for line in ([(1, 0), (1, 1)], [(1, 1), (2, 1), (3, 1)]):  # every line: 0 or ≥ 2 with sum ≥ 5
        hidden = [c for c in line if marked[c]]
        assert len(hidden) != 1
    assert suppress(cells, counts) == suppress(cells, counts)  # deterministic


def test_rates_and_change_as_in_the_spec_story() -> None:
    row = statistics_pb2.BeforeAfterRow()
    _row(row, [(19, False), (8, False)], (180, 180))
    assert row.before.count == 19 and row.after.count == 8
    assert row.before_rate_per_30_days == 3.17
    assert row.after_rate_per_30_days == 1.33
    assert row.change_percent == -57.9


def test_rates_are_left_out_when_suppressed_empty_or_from_zero() -> None:
    row = statistics_pb2.BeforeAfterRow()
    _row(row, [(3, True), (9, False)], (30, 30))
    assert row.before.suppressed and not row.HasField("before_rate_per_30_days")
    assert not row.HasField("change_percent") and row.after_rate_per_30_days == 9.0
    zero = statistics_pb2.BeforeAfterRow()
    _row(zero, [(0, False), (9, False)], (30, 30))
    assert zero.before_rate_per_30_days == 0.0 and not zero.HasField("change_percent")
    empty = statistics_pb2.BeforeAfterRow()
    _row(empty, [None, (9, False)], (0, 30))
    assert not empty.HasField("before") and not empty.HasField("before_rate_per_30_days")


def test_periods_and_alignment() -> None:
    from datetime import date

    P = statistics_pb2
    assert calendar.aligned(date(2026, 3, 2), P.STATISTICS_PERIOD_WEEK)  # a Monday
    assert not calendar.aligned(date(2026, 3, 3), P.STATISTICS_PERIOD_WEEK)
    assert calendar.period_starts(date(2025, 11, 1), date(2026, 2, 1), P.STATISTICS_PERIOD_MONTH) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
    ]
