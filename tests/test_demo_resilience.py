"""'ansim demo --only resilience': kill -9 any one process of the federation and lose no SOS (issue #4).

Real processes: the directory and four centers. Each target — the directory, 안양, 금천, 해운대 and
the app's home center 종로 — is killed with SIGKILL mid-scenario while the app presses SOS in every
center's area (APP-001: one request_id per press, resent while the home center is down), then
restarted on its store and ports. The demo's ledger asks every center, through its staff API,
where each acknowledged press is: one emergency at home, exactly one handling center (the
responsible one, FED-009), dispatched to that region's 112; a press whose center was down fell
back at home within 5 s (FED-014) and moved there after the restart with the home dispatch
SUPERSEDED (FED-015); with the directory down the centers routed from cached answers and their
last registry (DIR-020, DIR-021).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TARGETS = (
    "kill -9 the directory",
    "kill -9 centers/anyang",
    "kill -9 centers/seoul-geumcheon",
    "kill -9 centers/busan-haeundae",
    "kill -9 centers/seoul-jongno",
)


def test_killing_any_one_process_loses_no_sos(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansim"), "demo", "--only", "resilience", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,  # a loaded CI machine: every restart of a center is CPU-bound
        env={**os.environ, "COLUMNS": "250"},
    )
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    summary = result.stdout[result.stdout.index("Summary") :]
    lines = {target: next(line for line in summary.splitlines() if target in line) for target in TARGETS}
    for line in lines.values():
        assert "passed" in line and "none lost" in line, line
    for peer in TARGETS[1:4]:
        assert "fallback at home" in lines[peer] and "SUPERSEDED" in lines[peer], lines[peer]
    assert re.search(r"none doubled; resent \d+ times", lines[TARGETS[4]]), lines[TARGETS[4]]
    timeline = result.stdout[: result.stdout.index("Summary")]
    ledger = [line for line in timeline.splitlines() if "│ ledger" in line]
    assert len(ledger) == 8 + 3 * 4 + 8, "\n".join(ledger)  # every press accounted for, once
