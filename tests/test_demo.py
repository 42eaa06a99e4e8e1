"""'ansim demo' plays the federation across real processes, exits 0, and stays well under a minute."""

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
    for scenario in ("handoff across the Seoul–Anyang border", "forged / unregistered peer refused"):
        line = next(line for line in summary.splitlines() if scenario in line)
        assert "passed" in line, line
    assert "failed" not in summary
