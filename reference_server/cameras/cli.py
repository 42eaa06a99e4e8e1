"""``ansim cameras import FILE [--data-dir D]``: load the national CCTV dataset into a center's store.

Prints one line per rejected row (``line N: reason``, to stderr), then a summary line on stdout::

    imported 1834, updated 12, unchanged 40210, rejected 3 (of 42059 rows)

and shows a progress bar on large files when stderr is a terminal. Exit code 0 when the file was
read (even with rejected rows), 2 when it could not be (missing file, unknown header).

Works against a running center too: the center polls the store and picks the import up within a few
seconds; importing while it is stopped is equally fine (the index is built from the store at start).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ansim_sdk.cli import app
from reference_server.cameras.layout import HeaderError
from reference_server.domain.cameras.importer import import_file
from reference_server.domain.cameras.parse_worker import OpenedFile

cameras_app = typer.Typer(
    help="The center's CCTV inventory (national CCTV standard dataset).", no_args_is_help=True
)
app.add_typer(cameras_app, name="cameras")

#: Files with more lines than this get a progress bar (on a terminal).
PROGRESS_MIN_LINES = 20_000
#: The bar is advanced every this many lines (not per row: that cost ~4 % of an import).
PROGRESS_EVERY_LINES = 1000


def count_lines(path: Path) -> int:
    total = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            total += chunk.count(b"\n")
    return total


@cameras_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV file (CP949/EUC-KR or UTF-8, current or older layout)")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The center's data directory")] = Path("data"),
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Force an encoding (default: detected)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not list rejected rows")] = False,
) -> None:
    """Import (or re-import) a CCTV dataset file; rows are updated in place by 관리번호."""
    if not file.is_file():
        typer.echo(f"ansim cameras import: {file}: no such file", err=True)
        raise typer.Exit(2)
    lines = count_lines(file)
    show = lines >= PROGRESS_MIN_LINES and sys.stderr.isatty()
    progress = Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not show
    )
    task = progress.add_task("rows", total=max(lines - 1, 1))

    def on_line(line_number: int) -> None:
        if line_number % PROGRESS_EVERY_LINES == 0:  # redrawn a few times a second anyway
            progress.update(task, completed=line_number - 1)

    def on_open(opened: OpenedFile) -> None:
        typer.echo(f"{file}: {opened.layout.value} layout, {opened.encoding}", err=True)

    try:
        with progress:
            summary = import_file(file, data_dir, encoding=encoding, on_line=on_line, on_open=on_open)
            progress.update(task, completed=max(lines - 1, 1))
    except HeaderError as error:
        typer.echo(f"ansim cameras import: {file}: {error}", err=True)
        raise typer.Exit(2) from None
    if not quiet:
        for problem in summary.errors:
            typer.echo(f"line {problem.line_number}: {problem.reason}", err=True)
    typer.echo(
        f"imported {summary.imported}, updated {summary.updated}, unchanged {summary.unchanged}, "
        f"rejected {summary.rejected} (of {summary.rows} rows)"
    )
