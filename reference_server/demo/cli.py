"""``ansim demo``: a national federation on loopback, played through its scenarios.

ansim demo                 # directory + 4 centers as processes, scenarios, timeline, summary
ansim demo --national      # one center per municipality (250), random SOS vs ground truth
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ansim_sdk.cli import app


def demo_command(
    national: Annotated[
        bool, typer.Option("--national", help="250 centers (one per municipality), random SOS routing")
    ] = False,
    sos: Annotated[int, typer.Option("--sos", help="Random SOS to route in --national mode")] = 500,
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep the data directories here")] = None,
) -> None:
    """Run the multi-center federation demo; exit 0 only if every expected scenario held."""
    console = Console()
    if national:
        from reference_server.demo.national import run_national

        raise typer.Exit(asyncio.run(run_national(console, sos)))
    from reference_server.demo.runner import play, report

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        demo = asyncio.run(play(keep))
        raise typer.Exit(report(demo, console))
    with tempfile.TemporaryDirectory(prefix="ansim-demo-") as root:
        demo = asyncio.run(play(Path(root)))
        raise typer.Exit(report(demo, console))


app.command("demo")(demo_command)
