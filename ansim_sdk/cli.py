"""The `ansim` command line: one root Typer app that every component adds its commands to.

Each component registers its commands when its CLI module is imported, so adding one is one import
line at the bottom of this file (no dynamic discovery: the command list is explicit and static):

    # in reference_server/cli.py
    from ansim_sdk.cli import app
    server_app = typer.Typer(help="...")
    app.add_typer(server_app, name="server")

    # here
    import reference_server.cli  # noqa: E402, F401
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ansim",
    help="Ansim Interop (안심 연계 표준) tools: validate messages, run the reference center and the "
    "conformance suite.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Ansim Interop (안심 연계 표준) command line."""


def main() -> None:
    """Entry point of the `ansim` console script."""
    app()


# --- command registry: one import line per component (keep sorted) -----------------------------
import ansim_sdk.cli_validate  # noqa: E402, F401
import conformance.cli  # noqa: E402, F401
import reference_server.audit_cli  # noqa: E402
import reference_server.cameras.cli  # noqa: E402
import reference_server.cli  # noqa: E402
import reference_server.demo.cli  # noqa: E402
import reference_server.video_cli  # noqa: E402, F401

if __name__ == "__main__":
    main()
