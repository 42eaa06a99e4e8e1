"""'ansim demo' plays the federation across real processes, exits 0, and stays well under a minute.

The app-level scenarios go through the centers' real EmergencyService and FederationService: an SOS
at home is dispatched at home; a visitor's SOS raised at her home center is forwarded to the
responsible center, dispatched and acknowledged there, with no dispatch at home, and her watch at
home follows it; her own StreamLocation fixes hand it off across the Seoul–Anyang border (the old
center's dispatch SUPERSEDED, its emergency TRANSFERRED); with the responsible center killed, the
home center falls back within 5 s and, once it is back, forwards again and supersedes its own
dispatch, leaving one emergency for the incident there.

The local scenarios go through the centers' ChildSafetyService, TagEventService, GuardianService
and SafeTripService: a child's tag sighted at the school gate notifies her guardian (TAG-011,
GRD-001); two sightings in a danger zone notify her (TAG-013) and, unanswered, escalate to the
center's DANGER_ZONE_ENTRY emergency dispatched to 112 and on to the police rung (GRD-003,
GRD-006, GRD-007); a bell press raises an EMERGENCY_BELL emergency at the responsible center,
dispatched to its police and acknowledged (TAG-017); a safe trip past its arrival time alerts the
guardian and escalates to a SAFE_TRIP_OVERDUE emergency dispatched to 112 (TRIP-004, TRIP-007,
TRIP-008)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def test_demo_passes_its_expected_scenarios_quickly(tmp_path: Path) -> None:
    began = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansim"), "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert elapsed < 60, f"the demo took {elapsed:.0f} s"
    summary = result.stdout[result.stdout.index("Summary") :]
    for scenario in (
        "forged / unregistered peer refused",
        "duplicate forward of one incident is suppressed",
        "app SOS at home: handled by the home center",
        "app SOS by a visitor: forwarded to the responsible center, watched at home",
        "handoff across the Seoul–Anyang border",
        "center killed mid-scenario: fallback at home, recovery, one emergency",
        "child: school arrival and danger-zone entry",
        "emergency bell press",
        "safe trip overdue",
    ):
        line = next(line for line in summary.splitlines() if scenario in line)
        assert "passed" in line, line
    assert "failed" not in summary
