"""Console output: a progress bar while cases run, then one table per run with a row per profile."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conformance.results import CaseResult, RunResult, Verdict

_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "dark_orange",
    "incomplete": "yellow",
    "skip": "yellow",
    "not-run": "yellow",
    "not-applicable": "dim",
}


@contextmanager
def progress(console: Console, total: int) -> Iterator[Callable[[CaseResult], None]]:
    """Yields the callback the runner calls after each case."""
    bar = Progress(
        TextColumn("[bold]conformance"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task("", total=total)

        def done(result: CaseResult) -> None:
            bar.update(task, advance=1, description=f"{result.id} {result.verdict.value}")
            if result.verdict in (Verdict.FAIL, Verdict.ERROR):
                style = _STYLE[result.verdict.value]
                label = f"[{style}]{result.verdict.value.upper()}[/]"
                console.print(f"{label} {result.id} ({result.level}): {result.message}")

        yield done


def print_summary(console: Console, result: RunResult) -> None:
    table = Table(title=f"Ansim conformance — {result.target} (spec {result.spec_version})")
    for column in ("profile", "verdict", "MUST passed", "failures", "incomplete", "warnings"):
        table.add_column(column)
    for name, p in result.profiles.items():
        style = _STYLE[p.verdict.value]
        table.add_row(
            name,
            f"[{style}]{p.verdict.value}[/]",
            f"{p.must_passed}/{p.must_total}",
            str(len(p.failures)),
            str(len(p.incomplete)),
            str(len(p.warnings)),
        )
    console.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in result.counts().items() if v)
    console.print(f"cases: {counts}; {result.duration_s:.1f} s")
    for line in result.preflight:
        console.print(f"[yellow]pre-flight[/] {line}")
    for line in result.stale_known_failures:
        console.print(f"[bold red]stale known failure[/] {line}")
    verdict = "[green]PASSED[/]" if result.passed else "[bold red]NOT PASSED[/]"
    console.print(f"result: {verdict}")
