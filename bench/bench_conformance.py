"""Issue 6 §8: wall time of the full conformance suite against the reference server.

A demo center writes its own declaration (``<data-dir>/conformance/vendor.yaml``); the suite runs
as ``ansim conformance run`` in a child process. Baseline: the same command with ``--only`` the
first case, i.e. the fixed cost (interpreter, imports, pre-flight, reports) that any run pays.
The target (< 60 s) is absolute; the verdict of the run does not matter here.
"""

from __future__ import annotations

import json
import subprocess

from bench.center import demo_center
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
    with demo_center(ctx.workdir / "center") as center:
        config = center.data_dir / "conformance" / "vendor.yaml"
        if not config.is_file():
            from conformance.demo import write_demo_declaration

            write_demo_declaration(center.data_dir, center.address, mtls_address=center.mtls_address)
        base = [*ansim, "conformance", "run", "--config", str(config)]
        full = measure([*base, "--report-dir", str(ctx.workdir / "full")])
        floor = measure([*base, "--report-dir", str(ctx.workdir / "one"), "--only", cases[0]["id"]])
    report_path = ctx.workdir / "full" / "conformance-report.json"
    verdicts: dict[str, int] = {}
    if report_path.is_file():
        for case in json.loads(report_path.read_text(encoding="utf-8")).get("cases", []):
            verdicts[case["verdict"]] = verdicts.get(case["verdict"], 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
    return [
        Row(
            f"conformance.full suite ({len(cases)} cases)",
            full.seconds,
            "s",
            floor.seconds,
            "one case",
            Target("figure", "<", 60.0, "< 60 s"),
            note=f"exit {full.returncode}; {summary}",
            extra={"verdicts": verdicts, "exit_code": full.returncode},
        )
    ]
