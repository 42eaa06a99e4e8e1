"""``ansim conformance run --client app|reader-gateway|agency --listen HOST:PORT [--control HOST:PORT]
--report-dir DIR``: client mode of the run command.

Imported by conformance/cli.py after its ``run`` command is defined; it replaces that command's
callback with one that takes the client-mode options as well and hands over to server mode when
``--client`` is not given, so both modes share one command, one set of reports and one exit code
rule (0 pass, 1 not passed, 2 could not run).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console

from conformance import cli as base
from conformance.cases import load_cases
from conformance.harness.runmode import DEFAULT_WAIT_S, run_client_mode
from conformance.harness.session import CLIENT_ROLES, HarnessSession
from conformance.reports import write_reports
from conformance.reports.console import print_summary
from conformance.requirements import load_requirements
from conformance.runner import RunError, RunOptions

_server_run: Callable[..., None] = getattr(base, "run_command")  # noqa: B009 - circular import

ClientOption = Annotated[
    str | None,
    typer.Option("--client", help=f"Client mode: test a client of this profile ({', '.join(CLIENT_ROLES)})."),
]
ListenOption = Annotated[
    str, typer.Option("--listen", help="Client mode: HOST:PORT the harness center listens on.")
]
ControlOption = Annotated[
    str, typer.Option("--control", help="Client mode: HOST:PORT of the control API for the test driver.")
]
InsecureOption = Annotated[
    bool, typer.Option("--insecure", help="Client mode: plain-text harness (SEC-004 cases are skipped).")
]
WaitOption = Annotated[
    float, typer.Option("--wait", help="Client mode: seconds to wait for the client to finish the scenario.")
]


def client_run(
    role: str,
    listen: str,
    control: str,
    report_dir: Path,
    *,
    insecure: bool,
    wait: float,
    only: list[str] | None,
    exclude: list[str] | None,
    strict: bool,
    known_failures: Path | None,
    catalogue: Path | None,
) -> int:
    console = Console(highlight=False, soft_wrap=True)
    if role not in CLIENT_ROLES:
        console.print(f"[bold red]cannot run[/]\n--client must be one of {', '.join(CLIENT_ROLES)}")
        return 2
    requirements = load_requirements(catalogue)
    options = RunOptions(
        profiles=[role], only=only or (), exclude=exclude or (), strict=strict, known_failures=known_failures
    )
    try:
        session = HarnessSession(
            role,
            listen,
            control,
            tls=not insecure,
            workdir=report_dir / "harness",
            announce=lambda line: console.print(f"[bold cyan]harness[/] {line}"),
        )
        result = asyncio.run(run_client_mode(session, load_cases(), requirements, options, wait_s=wait))
    except (RunError, ValueError, OSError, RuntimeError) as error:
        console.print(f"[bold red]cannot run[/]\n{error}")
        return 2
    paths = write_reports(result, report_dir)
    print_summary(console, result)
    for kind, path in paths.items():
        console.print(f"{kind} report: {path}")
    return result.exit_code


def _install() -> None:
    hints = get_type_hints(_server_run, include_extras=True)
    signature = inspect.signature(_server_run)
    params = []
    for param in signature.parameters.values():
        annotation = hints[param.name]
        if param.name == "config":
            # Optional in client mode; server mode still refuses to run without it.
            annotation = Annotated[Path | None, *annotation.__metadata__]
            param = param.replace(default=None)
        params.append(param.replace(annotation=annotation))
    extra = {
        "client": (ClientOption, None),
        "listen": (ListenOption, "127.0.0.1:50551"),
        "control": (ControlOption, "127.0.0.1:0"),
        "insecure": (InsecureOption, False),
        "wait": (WaitOption, DEFAULT_WAIT_S),
    }
    for name, (annotation, default) in extra.items():
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        hints[name] = annotation

    def run(**kwargs: Any) -> None:
        client = kwargs.pop("client")
        listen, control = kwargs.pop("listen"), kwargs.pop("control")
        insecure, wait = kwargs.pop("insecure"), kwargs.pop("wait")
        if client is not None:
            code = client_run(
                client,
                listen,
                control,
                kwargs["report_dir"],
                insecure=insecure,
                wait=wait,
                only=kwargs.get("only"),
                exclude=kwargs.get("exclude"),
                strict=kwargs.get("strict", False),
                known_failures=kwargs.get("known_failures"),
                catalogue=kwargs.get("catalogue"),
            )
            raise typer.Exit(code)
        if kwargs.get("config") is None:
            Console().print("[bold red]cannot run[/]\n--config is required (or --client for client mode)")
            raise typer.Exit(2)
        _server_run(**kwargs)

    run.__doc__ = (_server_run.__doc__ or "").rstrip() + (
        " With --client, host a harness center for a client of that profile and test the client instead."
    )
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    )
    run.__annotations__ = {**hints, "return": None}
    for info in base.conformance_app.registered_commands:
        if info.callback is _server_run:
            info.callback = run


_install()
