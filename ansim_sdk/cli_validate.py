"""`ansim validate <MessageType> <file.json>`: check a proto3 JSON message against the standard.

Exit status: 0 valid, 1 invalid, 2 usage error (unknown type, unreadable file, not JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ansim_sdk import jsonvalidation
from ansim_sdk.cli import app

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _consoles() -> tuple[Console, Console]:
    # soft_wrap: never break a path or rule across lines, so output stays greppable.
    return Console(soft_wrap=True, highlight=False), Console(stderr=True, soft_wrap=True, highlight=False)


@app.command("validate")
def validate(
    message_type: Annotated[
        str, typer.Argument(help="Message type, e.g. ansim.v1.Location, Location or Location.Ellipse.")
    ],
    file: Annotated[
        Path, typer.Argument(help="JSON file with the message in proto3 JSON form ('-' = stdin).")
    ],
) -> None:
    """Validate a JSON message: its JSON Schema first, then proto3 JSON parsing and protovalidate (CEL).

    Prints every problem with its JSON path, the rule broken and the requirement ID.
    Exit status: 0 valid, 1 invalid, 2 usage error.
    """
    out, err = _consoles()
    try:
        full_name = jsonvalidation.resolve_type(message_type)
    except jsonvalidation.UnknownMessageType as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[bold red]error:[/] cannot read {escape(str(file))}: {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        problems = jsonvalidation.validate_json(full_name, text)
    except json.JSONDecodeError as exc:
        err.print(f"[bold red]error:[/] {escape(str(file))} is not JSON: {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    except jsonvalidation.UnknownMessageType as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    if not problems:
        out.print(f"[bold green]valid[/] {escape(str(file))} is a valid {full_name}")
        raise typer.Exit(EXIT_VALID)
    noun = "problem" if len(problems) == 1 else "problems"
    out.print(f"[bold red]invalid[/] {escape(str(file))} as {full_name}: {len(problems)} {noun}")
    for p in problems:
        out.print(
            f"  [bold]{escape(p.path)}[/]  rule: [yellow]{escape(p.rule)}[/]  "
            f"requirement: [cyan]{escape(p.requirement)}[/]  ({p.source}) {escape(p.message)}"
        )
    raise typer.Exit(EXIT_INVALID)
