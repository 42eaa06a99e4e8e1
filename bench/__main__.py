"""python -m bench [--quick] [--only NAME …] [--out bench/results/latest.json]

Runs the benchmarks of issue 6, each next to its baseline in the same run, prints a table of
figures, baselines, ratios and targets, and writes the same as JSON with a description of the
machine. A missed target is reported, never an error: the exit code is 0 unless a benchmark
crashed (1) or the arguments are wrong (2).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.core import Context, Row, Sizes
from bench.machine import machine_info
from bench.registry import BENCHMARKS

DEFAULT_OUT = Path("bench/results/latest.json")


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0 or abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def table(rows: list[Row]) -> Table:
    t = Table(title="Ansim Interop reference implementation — benchmarks", show_lines=False)
    for col in ("benchmark", "figure", "baseline", "ratio", "target", "met?"):
        t.add_column(col, justify="left" if col in ("benchmark", "target") else "right")
    for r in rows:
        if r.status != "ok":
            t.add_row(r.benchmark, f"[dim]{r.status}[/dim]", "", "", "", "", end_section=False)
            t.add_row(f"  [dim]{r.note}[/dim]", "", "", "", "", "")
            continue
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: ""}[r.met]
        baseline = f"{_fmt(r.baseline)} {r.unit} ({r.baseline_name})" if r.baseline is not None else ""
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}×" if r.ratio >= 0.1 else f"{r.ratio:.2g}×"
        name = r.benchmark + (f" [dim]({r.note})[/dim]" if r.note else "")
        target = r.target.label if r.target else ""
        t.add_row(name, f"{_fmt(r.figure)} {r.unit}", baseline, ratio, target, met)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in under a minute")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", choices=sorted(BENCHMARKS), help="run only these benchmarks"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    console = Console(stderr=True)
    names = args.only or list(BENCHMARKS)
    sizes = Sizes.for_run(args.quick)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    crashed = False
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="ansim-bench-") as tmp:
        for name in names:
            ctx = Context(sizes, Path(tmp) / name, lambda msg: console.log(msg))
            ctx.workdir.mkdir(parents=True)
            t0 = time.perf_counter()
            console.log(f"[bold]{name}[/bold]")
            try:
                rows.extend(BENCHMARKS[name](ctx))
            except Exception as error:  # a crashed benchmark is reported and the others still run
                crashed = True
                console.print(traceback.format_exc())
                rows.append(Row(name, None, "", status="error", note=f"{type(error).__name__}: {error}"))
            timings[name] = round(time.perf_counter() - t0, 2)

    Console(width=None if sys.stdout.isatty() else 160).print(table(rows))
    result = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "machine": machine_info(),
        "seconds": timings,
        "results": [r.to_json() for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.log(f"wrote {args.out}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
