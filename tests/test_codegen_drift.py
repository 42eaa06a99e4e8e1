"""gen/python and spec/schemas are exactly what tools.generate derives from proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_generated_files_match_protos() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.generate", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, (
        "generated code or schemas drifted from proto/ (run python -m tools.generate):\n"
        + result.stdout
        + result.stderr
    )
