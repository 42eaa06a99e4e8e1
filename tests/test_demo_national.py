"""'ansim demo --national' runs real centers and routes every random SOS to the ground-truth center.

A subset of the 250 municipalities (25 centers in two host processes, 40 SOS) keeps the run well
under a minute on two cores. Each SOS is raised by an app at a random home center's
EmergencyService (MODE_EXERCISE, APP-007) from a random point inside one of those municipalities;
the home center resolves it with the directory and forwards it over federation gRPC (FED-012); the
simulation then checks, at the centers' own APIs, that the home center names the municipality
containing the point (shapely ground truth) as handling center and that this center dispatched its
own 112 situation room (FED-014). The CLI exits 0 only if every SOS did.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

CENTERS = 25
PER_PROCESS = 13
SOS = 40


def test_national_simulation_routes_every_sos_to_the_ground_truth_center(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansim"),
            "demo",
            "--national",
            "--limit-centers",
            str(CENTERS),
            "--centers-per-process",
            str(PER_PROCESS),
            "--sos",
            str(SOS),
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "COLUMNS": "200"},
    )
    report = result.stdout
    assert result.returncode == 0, report[-4000:] + result.stderr[-2000:]
    assert re.search(rf"centers / host processes\s*│\s*{CENTERS} in 2 ", report), report
    right = rf"routed to the right center, dispatched\s*│\s*{SOS}/{SOS} \(100\.0 %\)"
    assert re.search(right, report), report
    forwarded = re.search(r"forwarded / handled at home\s*│\s*(\d+) / (\d+)", report)
    assert forwarded is not None, report
    assert int(forwarded[1]) > 0, "no SOS crossed between centers"
    assert re.search(r"end to end p50 / p95 / max\s*│\s*\d+ / \d+ / \d+ ms", report), report
    # every center ran on its own embedded store, with its own certificate pair
    stores = sorted(p.parent.name for p in tmp_path.glob("m*/center.sqlite"))
    assert len(stores) == CENTERS
    assert all((tmp_path / "pki" / "centers" / name / "server.pem").is_file() for name in stores)
