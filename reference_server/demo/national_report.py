"""The figures of the national simulation and the table ``ansim demo --national`` prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from reference_server.demo.national_sos import Outcome

MIB = 1024 * 1024
#: Failed SOS listed individually below the table.
SHOWN_FAILURES = 10


@dataclass
class Figures:
    centers: int
    processes: int
    startup_s: float = 0.0
    register_s: float = 0.0
    traffic_s: float = 0.0
    rss_bytes: int = 0  # host processes, after start-up and registration
    rss_after_bytes: int = 0  # host processes, after the SOS traffic
    directory_rss_bytes: int = 0


def spread(values: list[float]) -> str:
    """p50 / p95 / max in milliseconds."""
    if not values:
        return "-"
    ms = np.array(values) * 1000
    return f"{np.percentile(ms, 50):.0f} / {np.percentile(ms, 95):.0f} / {ms.max():.0f} ms"


def print_report(console: Console, figures: Figures, outcomes: list[Outcome]) -> None:
    count = len(outcomes)
    right = sum(o.correct for o in outcomes)
    forwarded = [o for o in outcomes if o.forwarded]
    table = Table(title=f"National simulation ({figures.centers} real centers, real gRPC between them)")
    table.add_column("measure")
    table.add_column("value")
    per = figures.centers / max(figures.processes, 1)
    table.add_row("centers / host processes", f"{figures.centers} in {figures.processes} (~{per:.0f} each)")
    table.add_row("start-up (directory + all centers)", f"{figures.startup_s:.1f} s")
    table.add_row("directory registration", f"{figures.register_s:.1f} s")
    table.add_row(
        "RSS of the host processes",
        f"{figures.rss_bytes / MIB:.0f} MiB ({figures.rss_bytes / MIB / max(figures.centers, 1):.1f} MiB"
        f" per center); {figures.rss_after_bytes / MIB:.0f} MiB after the traffic",
    )
    total = figures.rss_after_bytes + figures.directory_rss_bytes
    table.add_row(
        "RSS of the directory", f"{figures.directory_rss_bytes / MIB:.0f} MiB (total {total / MIB:.0f} MiB)"
    )
    rate = count / figures.traffic_s if figures.traffic_s else 0.0
    table.add_row("random SOS", f"{count} in {figures.traffic_s:.1f} s ({rate:.1f}/s)")
    table.add_row("forwarded / handled at home", f"{len(forwarded)} / {count - len(forwarded)}")
    share = 100 * right / count if count else 0.0
    table.add_row("routed to the right center, dispatched", f"{right}/{count} ({share:.1f} %)")
    table.add_row(
        "end to end p50 / p95 / max",
        spread([o.end_to_end_s for o in outcomes if o.end_to_end_s is not None]),
    )
    table.add_row(
        "routing only (forwarded) p50 / p95 / max",
        spread([o.routing_s for o in forwarded if o.routing_s is not None]),
    )
    console.print(table)
    console.print(
        "end to end: the app's RaiseEmergency call → 112 dispatch requested at the responsible"
        " center; routing: RAISED at the home center → accepted at the responsible center"
        " (directory resolution, pin check, forward); both from the centers' own timestamps"
    )
    for outcome in [o for o in outcomes if not o.correct][:SHOWN_FAILURES]:
        sos = outcome.sos
        console.print(
            f"[red]SOS {sos.index}[/red] home m{sos.home} at ({sos.lat:.5f}, {sos.lon:.5f}), truth"
            f" m{sos.truth or '?'}: handled by {outcome.handled_by or '-'}, dispatched to"
            f" {outcome.dispatched_to or '-'} {outcome.error}"
        )
