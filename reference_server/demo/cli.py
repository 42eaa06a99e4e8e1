"""``ansim demo``: a national federation on loopback, played through its scenarios.

ansim demo                 # directory + 4 centers as processes, scenarios, timeline, summary
ansim demo --national      # 250 real centers (one per municipality), random SOS vs ground truth
ansim demo --national --limit-centers 25 --sos 40       # a random subset of the municipalities
ansim demo --national --directory-only                  # 250 directory entries, no centers
ansim demo --only resilience    # kill -9 each process in turn; no SOS may be lost
"""

from __future__ import annotations

import asyncio
import contextlib
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
    sos: Annotated[int, typer.Option("--sos", help="Random SOS to route in --national mode", min=1)] = 500,
    centers_per_process: Annotated[
        int, typer.Option("--centers-per-process", help="--national: centers hosted per process", min=1)
    ] = 50,
    limit_centers: Annotated[
        int | None,
        typer.Option("--limit-centers", help="--national: only this many (random) municipalities", min=1),
    ] = None,
    directory_only: Annotated[
        bool, typer.Option("--directory-only", help="--national: directory entries only, no centers")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="--national: seed of the random SOS")] = 2026,
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep the data directories here")] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Play only this scenario group: resilience")
    ] = None,
) -> None:
    """Run the multi-center federation demo; exit 0 only if every expected scenario held."""
    console = Console()
    if national and directory_only:
        from reference_server.demo.national_directory import run_directory_only

        raise typer.Exit(asyncio.run(run_directory_only(console, sos, seed)))
    if national:
        from reference_server.demo.national import run_national

        with contextlib.ExitStack() as stack:
            where = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ansim-national-")))
            where.mkdir(parents=True, exist_ok=True)
            code = asyncio.run(
                run_national(
                    console, where, sos, per_process=centers_per_process, limit=limit_centers, seed=seed
                )
            )
        raise typer.Exit(code)
    from reference_server.demo.runner import play, report

    if only not in (None, "resilience"):
        raise typer.BadParameter(f"unknown scenario group {only!r}; known: resilience", param_hint="--only")
    if only == "resilience":
        from reference_server.demo.resilience import play_resilience

        play = play_resilience
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        demo = asyncio.run(play(keep))
        raise typer.Exit(report(demo, console))
    with tempfile.TemporaryDirectory(prefix="ansim-demo-") as root:
        demo = asyncio.run(play(Path(root)))
        raise typer.Exit(report(demo, console))


app.command("demo")(demo_command)
