"""A serving center freezes its start-up heap and raises the GC thresholds (issue 6, fan-out tail).

Full collections walking the whole heap paused the event loop for 75–155 ms under 1,000 streams
(bench/README.md, Fan-out); ``reference_server.gc_tuning`` runs once the center serves. What a
process's collector does is only visible from inside it, so the center's own start-up log line is
checked on a real ``ansim serve``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.center import start_center


def _gc_record(log: str) -> dict[str, object]:
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == "start-up heap frozen":
            return record
    raise AssertionError(f"no 'start-up heap frozen' line in the center's log:\n{log}")


def test_serving_center_freezes_its_start_up_heap(tmp_path: Path) -> None:
    center = start_center(tmp_path / "center")
    try:
        record = _gc_record(center.log())
    finally:
        assert center.terminate() == 0
    frozen = record["frozen_objects"]
    assert isinstance(frozen, int) and frozen > 10_000  # descriptors, demo data: far more than that
    assert record["gc_thresholds"] == [10_000, 20, 100]
