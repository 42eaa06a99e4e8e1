"""The reference center as a *home* center against the suite's federation harness, end to end.

``ansim serve --demo`` is pointed at the harness purely through the ``ANSIM_`` environment that
``python -m conformance.harness.federation`` prints (no code or config change), then
``ansim conformance run --profile federation --only <the home-side cases>`` runs as a real process
with the demo declaration plus a ``federation_harness`` section. Every home-side case must pass,
and the run must stay fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.center import CenterProcess
from tests.support.federation_harness import run_federation_cases, start_center_with_harness

HOME_SIDE = [
    "TC_DIR_017_SRV",
    "TC_DIR_018_SRV",
    "TC_DIR_019_SRV",
    "TC_DIR_020_SRV",
    "TC_EMG_023_SRV",
    "TC_FED_015_SRV",
    "TC_FED_016_SRV",
    "TC_FED_017_SRV",
    "TC_FED_018_SRV",
    "TC_FED_019_SRV",
    "TC_FED_020_SRV",
    "TC_FED_021_SRV",
    "TC_FED_022_SRV",
    "TC_FED_025_SRV",
    "TC_FED_026_SRV",
]
RUN_LIMIT_S = 120.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CenterProcess, Path]]:
    center, config = start_center_with_harness(tmp_path_factory.mktemp("federation-home"))
    yield center, config
    center.terminate()


@pytest.mark.slow
def test_home_side_cases_pass_against_the_reference(
    setup: tuple[CenterProcess, Path], tmp_path: Path
) -> None:
    center, config = setup
    started = time.monotonic()
    # only the home-side cases: the handling-side cases have their own tests
    result, report = run_federation_cases(config, HOME_SIDE, tmp_path / "reports", timeout_s=RUN_LIMIT_S)
    wall = time.monotonic() - started
    verdicts = {c["id"]: (c["verdict"], c["message"]) for c in report["cases"]}
    broken = {i: verdicts[i] for i in HOME_SIDE if verdicts[i][0] != "pass"}
    assert not broken, f"{broken}\n{result.stdout[-3000:]}\n{center.log()[-3000:]}"
    # the harness run stays well inside the minute the whole suite may take
    assert wall < 45.0, f"the federation profile with the harness took {wall:.1f} s"


def test_without_the_harness_section_the_home_side_cases_skip(
    setup: tuple[CenterProcess, Path], tmp_path: Path
) -> None:
    """A declaration without federation_harness leaves the home-side cases skipped, not failed."""
    center, _ = setup
    config = center.data_dir / "conformance" / "vendor.yaml"
    _, report = run_federation_cases(config, ["TC_FED_015_SRV"], tmp_path / "reports", timeout_s=60)
    case = next(c for c in report["cases"] if c["id"] == "TC_FED_015_SRV")
    assert case["verdict"] == "skip", case
    assert "federation_harness" in case["message"]
