"""buf lint (STANDARD + COMMENTS) is clean and buf breaking (WIRE_JSON) passes against the last release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("check", ["lint", "breaking"])
def test_buf(check: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.buf_checks", check],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"buf {check} failed:\n{result.stdout}{result.stderr}"
