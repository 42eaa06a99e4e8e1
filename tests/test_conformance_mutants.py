"""The conformance suite tests itself (issue 5): deliberately broken reference centers must be
caught by exactly the cases meant to catch them.

Each mutant in tests/mutants/ is the reference center with one small defect, applied at start-up
with ``ansim serve --demo --plugin tests.mutants.<name>:install``. For each, this file runs
``ansim conformance run --only`` with the cases the mutant declares in ``CAUGHT_BY`` plus a few
related cases of the same area as controls, and checks that the run does not pass, that every
expected case FAILS (a verdict of fail, not error: the suite saw the defect, it did not crash), and
that every control passes (so the defect is seen by exactly the cases meant to see it, not by a
center that is broken all over). One more run against the unpatched reference shows that every
case used here passes there, so each failure is the mutant's doing.

Each test starts its own center on free loopback ports and writes only under its tmp_path, so the
tests are independent and run in parallel under pytest-xdist.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mutants import MUTANTS
from tests.support.center import REPO_ROOT, CenterProcess, server_env, start_center

#: Related cases that must still pass against each mutant: neighbours of the expected cases that
#: exercise the same service or the same mechanism without the broken condition. Timing-heavy
#: cases are avoided, so that the verdicts do not depend on machine load.
CONTROLS: dict[str, tuple[str, ...]] = {
    # other CreateVideoGrant conditions and a granted video still behave
    "video_without_ack": ("TC_VID_001_SRV", "TC_VID_004_SRV", "TC_VID_006_SRV", "TC_VID_008_SRV"),
    # request_id is still required and well-formed; non-idempotent behaviour elsewhere is intact
    "ignores_request_id": ("TC_IDM_002_SRV", "TC_EMG_001_SRV", "TC_TAG_002_SRV", "TC_CHD_002_SRV"),
    # fresh dispatch subscriptions and the other resumable streams lose nothing
    "resume_drops_event": ("TC_DSP_001_SRV", "TC_DSP_003_SRV", "TC_EMG_019_SRV", "TC_GRD_002_SRV"),
    # longitude, uncertainty, fix_time and shape rules still apply
    "accepts_latitude_91": ("TC_LOC_002_SRV", "TC_LOC_003_SRV", "TC_LOC_005_SRV", "TC_EMG_001_SRV"),
    # the own guardian still reads location and track; other ward data stays private
    "ward_track_to_other_guardian": ("TC_GRD_009_SRV", "TC_GRD_010_SRV", "TC_CHD_012_SRV", "TC_GRD_004_SRV"),
    # health, reflection without a token and unknown fields are untouched
    "wrong_json_name": ("TC_GEN_001_SRV", "TC_GEN_004_SRV", "TC_GEN_005_SRV"),
    # trips themselves, their fixes and their end are untouched
    "keeps_test_traces": ("TC_TRIP_001_SRV", "TC_TRIP_006_SRV", "TC_TRIP_007_SRV"),
    # EXERCISE isolation, replay and region filters are untouched
    "leaks_test_to_live": ("TC_DSP_004_SRV", "TC_DSP_001_SRV", "TC_DSP_014_SRV"),
    # resuming with one's own cursor still works; forged cursors are still refused
    "cursor_scope_unchecked": ("TC_EMG_019_SRV", "TC_DSP_003_SRV", "TC_TRIP_009_SRV", "TC_GRD_003_SRV"),
    # escalation, its emergency, the trip's own location and the duress arrival are untouched
    "trip_fixes_not_forwarded": ("TC_TRIP_014_SRV", "TC_TRIP_001_SRV", "TC_TRIP_019_SRV"),
    # a single fresh stream's replay, resuming and cursor checks look right
    "replay_into_shared_scope": ("TC_GRD_001_SRV", "TC_GRD_002_SRV", "TC_GRD_003_SRV"),
}

RUN_TIMEOUT_S = 150.0

#: keeps_test_traces waits the longest (TC_PRV_001_SRV gives the purge 35 s): start it first so that
#: pytest-xdist spreads the others around it.
ORDER = sorted(MUTANTS, key=lambda m: m != "keeps_test_traces")


def caught_by(mutant: str) -> tuple[str, ...]:
    """The cases a mutant declares it must fail (importing the module does not apply the patch)."""
    return tuple(importlib.import_module(f"tests.mutants.{mutant}").CAUGHT_BY)


Verdicts = dict[str, dict[str, Any]]


def run_cases(center: CenterProcess, out: Path, cases: list[str]) -> tuple[int, Verdicts, str]:
    """``ansim conformance run --only <cases>`` against ``center`` as a separate process."""
    config = center.data_dir / "conformance" / "vendor.yaml"
    reports = out / "reports"
    command = [sys.executable, "-c", "from ansim_sdk.cli import main; main()", "conformance", "run"]
    command += ["--config", str(config), "--report-dir", str(reports)]
    for case_id in cases:
        command += ["--only", case_id]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    report_file = reports / "conformance-report.json"
    assert report_file.is_file(), f"no report (exit {done.returncode})\n{output}"
    report = json.loads(report_file.read_text(encoding="utf-8"))
    return done.returncode, {c["id"]: c for c in report["cases"]}, output


def _verdicts(cases: Verdicts, ids: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {i: f"{cases[i]['verdict']}: {cases[i].get('message', '')}" for i in ids}


def test_every_mutant_declares_its_cases_and_controls() -> None:
    """Cheap checks without a server: the table and the mutant modules agree with the suite."""
    from conformance.cases import load_cases

    registered = {c.id for c in load_cases().cases}
    assert set(CONTROLS) == set(MUTANTS)
    for mutant in MUTANTS:
        module = importlib.import_module(f"tests.mutants.{mutant}")
        expected = caught_by(mutant)
        assert expected, f"{mutant} declares no CAUGHT_BY"
        assert callable(module.install)
        unknown = [i for i in (*expected, *CONTROLS[mutant]) if i not in registered]
        assert not unknown, f"{mutant}: unknown case ids {unknown}"
        assert not set(expected) & set(CONTROLS[mutant]), f"{mutant}: a case is both expected and control"
        doc = module.__doc__ or ""
        assert doc.startswith("Mutant: "), f"{mutant}: the docstring must name the defect"
        assert all(i in doc for i in expected), f"{mutant}: the docstring must list every expected case"


@pytest.mark.slow
def test_reference_passes_every_case_the_mutants_use(tmp_path: Path) -> None:
    """Against the unpatched reference every expected and control case passes: a mutant's failures
    are caused by its defect."""
    cases = sorted({i for m in MUTANTS for i in (*caught_by(m), *CONTROLS[m])})
    center = start_center(tmp_path / "center")
    try:
        _, verdicts, output = run_cases(center, tmp_path, cases)
    finally:
        center.terminate()
    not_passed = {i: v for i, v in _verdicts(verdicts, cases).items() if not v.startswith("pass")}
    assert not not_passed, f"cases that do not pass against the reference: {not_passed}\n{output}"


@pytest.mark.slow
@pytest.mark.parametrize("mutant", ORDER)
def test_mutant_fails_exactly_its_cases(mutant: str, tmp_path: Path) -> None:
    expected, controls = caught_by(mutant), CONTROLS[mutant]
    center = start_center(tmp_path / "center", plugins=[f"tests.mutants.{mutant}:install"])
    try:
        code, verdicts, output = run_cases(center, tmp_path, [*expected, *controls])
    finally:
        center.terminate()
    assert code == 1, f"the run against mutant {mutant} passed (exit {code})\n{output}"
    missed = {i: v for i, v in _verdicts(verdicts, expected).items() if not v.startswith("fail")}
    assert not missed, f"mutant {mutant} was not caught (verdict fail) by: {missed}\n{output}"
    collateral = {i: v for i, v in _verdicts(verdicts, controls).items() if not v.startswith("pass")}
    assert not collateral, f"mutant {mutant} broke control cases: {collateral}\n{output}"
