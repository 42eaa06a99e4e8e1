"""CI gate for issue 5: every testable MUST of spec/requirements.yaml has a conformance case.

`ansim conformance coverage` exits 1 and lists each MUST without a case; untestable requirements
must carry their reason in the catalogue, which the catalogue loader enforces.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.center import REPO_ROOT


def test_every_testable_must_has_a_conformance_case() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ansim_sdk", "conformance", "coverage"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    missing = [line for line in result.stdout.splitlines() if line.startswith("MISSING MUST")]
    assert result.returncode == 0 and not missing, "\n".join(missing) or result.stdout + result.stderr
