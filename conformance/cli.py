"""``ansim conformance``: run the suite, list its cases, check coverage and the id lock.

Exit codes: 0 success; 1 the target did not pass / coverage or id check failed; 2 the command could
not run (bad declaration, options or known-failures file).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ansim_sdk.cli import app
from conformance.cases import load_cases
from conformance.coverage import compute_coverage, coverage_lines
from conformance.declaration import DeclarationError, check_target, load_declaration
from conformance.lockfile import LOCK_PATH, append_and_update, check_lock
from conformance.reports import write_reports
from conformance.reports.console import print_summary, progress
from conformance.requirements import load_requirements
from conformance.runner import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, RunError, RunOptions, plan, run_suite

conformance_app = typer.Typer(
    help="The conformance suite: prove that an implementation interoperates.",
    no_args_is_help=True,
)

CatalogueOption = Annotated[
    Path | None,
    typer.Option(
        "--catalogue",
        help="requirements.yaml or a directory of fragments (default: the installed spec).",
    ),
]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@conformance_app.command("run")
def run_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="The vendor declaration (vendor.yaml).")],
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="Where the JSON, JUnit and HTML reports go.")
    ],
    target: Annotated[str | None, typer.Option(help="HOST:PORT; overrides the declaration's target.")] = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", "-p", help="Test only these declared profiles.")
    ] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these case ids.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Do not run these case ids.")] = None,
    strict: Annotated[bool, typer.Option(help="SHOULD failures fail the profile.")] = False,
    known_failures: Annotated[
        Path | None, typer.Option("--known-failures", help="YAML: case id → expected verdict and reason.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = DEFAULT_CONCURRENCY,
    timeout: Annotated[
        float, typer.Option(help="Seconds per case before it counts as hung.")
    ] = DEFAULT_TIMEOUT_S,
    catalogue: CatalogueOption = None,
) -> None:
    """Run the suite against a target; exit 0 only when every declared profile passes."""
    console = _console()
    try:
        declaration = load_declaration(config)
        if target is not None:
            declaration = declaration.model_copy(update={"target": check_target(target)})
    except (DeclarationError, ValueError) as error:
        console.print(f"[bold red]declaration error[/]\n{error}")
        raise typer.Exit(2) from None
    requirements = load_requirements(catalogue)
    registry = load_cases()
    options = RunOptions(
        profiles=profile or (),
        only=only or (),
        exclude=exclude or (),
        strict=strict,
        known_failures=known_failures,
        concurrency=concurrency,
        case_timeout_s=timeout,
    )
    try:
        to_run, _ = plan(registry.cases, declaration, options, requirements)
        with progress(console, len(to_run)) as on_result:
            options.on_result = on_result
            result = asyncio.run(run_suite(registry, declaration, requirements, options))
    except (RunError, ValueError, OSError) as error:
        console.print(f"[bold red]cannot run[/]\n{error}")
        raise typer.Exit(2) from None
    paths = write_reports(result, report_dir)
    print_summary(console, result)
    for kind, path in paths.items():
        console.print(f"{kind} report: {path}")
    raise typer.Exit(result.exit_code)


@conformance_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    catalogue: CatalogueOption = None,
) -> None:
    """List every test case with its profiles, level, kind and requirement ids."""
    requirements = load_requirements(catalogue)
    cases = load_cases().cases
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "title": c.title,
            "profiles": list(c.profiles),
            "level": c.level(requirements) if all(r in requirements for r in c.requirements) else "?",
            "kind": c.kind,
            "features": list(c.features),
            "requirements": list(c.requirements),
        }
        for c in cases
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    # One case a line (greppable): id, level, kind, profiles, requirements, title.
    for row in rows:
        features = f" [needs {', '.join(row['features'])}]" if row["features"] else ""
        typer.echo(
            f"{row['id']}  {row['level']:<6} {row['kind']:<8} {','.join(row['profiles'])}  "
            f"{','.join(row['requirements'])}  {row['title']}{features}"
        )
    typer.echo(f"{len(rows)} cases")


@conformance_app.command("coverage")
def coverage_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    catalogue: CatalogueOption = None,
) -> None:
    """Fail when a testable MUST has no test case; warn for SHOULDs; report the negative share."""
    result = compute_coverage(load_cases().cases, load_requirements(catalogue))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        for line in coverage_lines(result):
            typer.echo(line)
    raise typer.Exit(0 if result.ok else 1)


@conformance_app.command("check-ids")
def check_ids_command(
    lock: Annotated[Path, typer.Option(help="The lock file.")] = LOCK_PATH,
    append: Annotated[
        bool, typer.Option("--append", help="Append new ids and update grown lines (never removes).")
    ] = False,
    catalogue: CatalogueOption = None,
) -> None:
    """Check the registered case ids against conformance/test_ids.lock."""
    registry = load_cases()
    text = lock.read_text(encoding="utf-8") if lock.is_file() else ""
    result = check_lock(registry.cases, text)
    problems = registry.problems(load_requirements(catalogue))
    if append and (result.missing or result.grown):
        lock.write_text(append_and_update(text, result), encoding="utf-8")
        typer.echo(f"{lock}: appended {len(result.missing)} id(s), updated {len(result.grown)} line(s)")
        result = check_lock(registry.cases, lock.read_text(encoding="utf-8"))
    for line in result.warnings:
        typer.echo(f"warning: {line}")
    for line in [*result.errors, *problems]:
        typer.echo(f"ERROR: {line}")
    ok = result.ok and not problems
    typer.echo(f"check-ids: {'OK' if ok else 'FAILED'} ({len(registry)} registered cases)")
    raise typer.Exit(0 if ok else 1)


from conformance.harness import cli as _client_mode  # noqa: E402,F401  (adds --client to `run`)

# Registered on import, like every component (ansim_sdk/cli.py imports this module).
app.add_typer(conformance_app, name="conformance")
