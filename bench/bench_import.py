"""Issue 6 §6: importing a 1.6 M-row CSV in the national CCTV format.

Each side runs in its own process so that its peak RSS is its own (``wait4`` rusage): the candidate
is ``ansim cameras import FILE`` into a fresh data directory; the baseline reads the same file with
a plain ``csv.reader`` and does nothing with the rows. The streaming parser alone
(``csv_import.CameraCsvReader``, no storage) is reported too, to split parse cost from store cost.
"""

from __future__ import annotations

import subprocess
import sys

from bench.core import Context, Row, Target, median
from bench.data import camera_csv
from bench.procs import Finished, child_env, measure

BASELINE = """
import csv, sys
n = 0
with open(sys.argv[1], encoding="utf-8-sig", newline="") as f:
    for row in csv.reader(f):
        n += 1
print(n - 1)
"""

PARSER = """
import sys
from reference_server.cameras.csv_import import CameraCsvReader
from reference_server.cameras.records import RowError
ok = bad = 0
with CameraCsvReader(sys.argv[1]) as reader:
    for item in reader:
        if isinstance(item, RowError):
            bad += 1
        else:
            ok += 1
print(ok, bad)
"""


#: ``ansim`` as the console script runs it (``python -m ansim_sdk.cli`` would register the component
#: commands on a second copy of the app, so it has no ``cameras``).
ANSIM = [sys.executable, "-c", "from ansim_sdk.cli import main; main()"]


def import_command() -> list[str] | None:
    """``ansim cameras import`` as a child command, or None while it does not exist."""
    base = [*ANSIM, "cameras", "import"]
    probe = subprocess.run([*base, "--help"], capture_output=True, text=True, env=child_env(), timeout=120)
    return base if probe.returncode == 0 else None


def run(ctx: Context) -> list[Row]:
    n = ctx.sizes.csv_rows
    path = camera_csv(n)
    size_mb = path.stat().st_size / 1e6
    ctx.log(f"import: {n:,} rows, {size_mb:.0f} MB")
    command = import_command()
    repeats = 1 if not ctx.sizes.quick else 2
    runs: dict[str, list[Finished]] = {"baseline": [], "parser": [], "cli": []}
    for i in range(repeats):
        runs["baseline"].append(measure([sys.executable, "-c", BASELINE, str(path)]))
        runs["parser"].append(measure([sys.executable, "-c", PARSER, str(path)]))
        if command is not None:
            runs["cli"].append(measure([*command, str(path), "--data-dir", str(ctx.workdir / f"c{i}"), "-q"]))
    for name, finished in runs.items():
        for f in finished:
            if f.returncode != 0:
                raise RuntimeError(f"{name} exited {f.returncode}: {f.stderr[-2000:]}")

    def secs(name: str) -> float:
        return median([f.seconds for f in runs[name]])

    def peak(name: str) -> float:
        return max(f.peak_rss for f in runs[name]) / 2**20

    label = "csv.reader"
    rows = [
        Row(
            f"import.parser only ({n:,} rows)",
            secs("parser"),
            "s",
            secs("baseline"),
            label,
            note=f"CameraCsvReader, no storage; {size_mb:.0f} MB",
            extra={"stdout": runs["parser"][0].stdout},
        ),
        Row(f"import.parser peak RSS ({n:,})", peak("parser"), "MiB", peak("baseline"), label),
    ]
    if command is None:
        rows.append(
            Row(
                "import.ansim cameras import",
                None,
                "",
                status="pending",
                note="`ansim cameras import` is not registered yet",
            )
        )
        return rows
    rows += [
        Row(
            f"import.ansim cameras import ({n:,})",
            secs("cli"),
            "s",
            secs("baseline"),
            label,
            Target("figure", "<", 60.0, "< 60 s"),
            extra={"stdout": runs["cli"][0].stdout[-2000:]},
        ),
        Row(
            f"import.ansim cameras import peak RSS ({n:,})",
            peak("cli"),
            "MiB",
            peak("baseline"),
            label,
            Target("figure", "<", 1024.0, "< 1 GiB"),
        ),
    ]
    return rows
