"""Issue 6 §8: wall time of the full conformance suite against the reference server.

A demo center writes its own declaration (``<data-dir>/conformance/vendor.yaml``), pointed at the
suite's federation harness as the CI gate (tests/test_conformance_reference.py) does, so that the
home-side federation cases run too instead of being skipped; the suite runs as ``ansim conformance
run`` in a child process. Baseline: the same command with ``--only`` the
first case, i.e. the fixed cost (interpreter, imports, pre-flight, reports) that any run pays.
The target (< 60 s) is absolute; the verdict of the run does not matter here.
"""

from __future__ import annotations

import json
import subprocess

import bench.center  # noqa: F401  (puts the repository and gen/python on sys.path)
from bench.core import Context, Row, Target
from bench.procs import child_env, measure

ANSIM = ["-c", "from ansim_sdk.cli import main; main()"]


def run(ctx: Context) -> list[Row]:
    import sys

    ansim = [sys.executable, *ANSIM]
    listing = subprocess.run(
        [*ansim, "conformance", "list", "--json"], capture_output=True, text=True, env=child_env(), check=True
    )
    cases = json.loads(listing.stdout)
    from tests.support.federation_harness import start_center_with_harness

    center, config = start_center_with_harness(ctx.workdir / "center")
    try:
        base = [*ansim, "conformance", "run", "--config", str(config)]
        full = measure([*base, "--report-dir", str(ctx.workdir / "full")])
        floor = measure([*base, "--report-dir", str(ctx.workdir / "one"), "--only", cases[0]["id"]])
    finally:
        center.terminate()
    report_path = ctx.workdir / "full" / "conformance-report.json"
    verdicts: dict[str, int] = {}
    failed: list[str] = []
    if report_path.is_file():
        for case in json.loads(report_path.read_text(encoding="utf-8")).get("cases", []):
            verdicts[case["verdict"]] = verdicts.get(case["verdict"], 0) + 1
            if case["verdict"] in ("fail", "error"):
                failed.append(case["id"])
    summary = ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
    if failed:
        summary += f" ({', '.join(failed)})"
    return [
        Row(
            f"conformance.full suite ({len(cases)} cases)",
            full.seconds,
            "s",
            floor.seconds,
            "one case",
            Target("figure", "<", 60.0, "< 60 s"),
            note=f"exit {full.returncode}; {summary}",
            extra={"verdicts": verdicts, "failed": failed, "exit_code": full.returncode},
        )
    ]
