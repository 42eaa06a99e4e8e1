"""The reference center as a *home* center whose SOS moves or changes after it was routed (issue #4,
spec §17.4, §17.6): ``ansim serve --demo`` against the suite's federation harness, judged by the
conformance cases TC_FED_027_SRV (recovery after a fallback follows her latest fix and carries her
duress cancel, FED-015, EMG-013), TC_FED_028_SRV (in fallback, leaving the home area triggers a
forward to the new area's center at once, FED-019) and TC_FED_029_SRV (a home handoff carries her
duress cancel, FED-019, EMG-013), run as a real ``ansim conformance run`` process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.center import CenterProcess
from tests.support.federation_harness import run_federation_cases, start_center_with_harness

CASES = ["TC_FED_027_SRV", "TC_FED_028_SRV", "TC_FED_029_SRV"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CenterProcess, Path]]:
    center, config = start_center_with_harness(tmp_path_factory.mktemp("federation-moving"))
    yield center, config
    center.terminate()


@pytest.mark.slow
def test_a_moving_or_changed_sos_is_forwarded_as_it_is_now(
    setup: tuple[CenterProcess, Path], tmp_path: Path
) -> None:
    center, config = setup
    result, report = run_federation_cases(config, CASES, tmp_path / "reports", timeout_s=120)
    verdicts = {c["id"]: (c["verdict"], c["message"]) for c in report["cases"]}
    broken = {i: verdicts.get(i) for i in CASES if verdicts.get(i, ("missing",))[0] != "pass"}
    assert not broken, f"{broken}\n{result.stdout[-3000:]}\n{center.log()[-3000:]}"
