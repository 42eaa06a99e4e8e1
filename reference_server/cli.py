"""``ansim serve``: run a reference center.

Machine-readable lines on stdout (everything else goes to stderr as JSON logs):

    ANSIM_LISTENING 127.0.0.1:50051
    ANSIM_LISTENING_MTLS 127.0.0.1:50052                    (mutual-TLS listener, if any)
    ANSIM_CA /data/pki/ca.pem                               (TLS only)
    ANSIM_TOKEN POLICE_OFFICER /data/tokens/police_officer.jwt   (--demo only, one per role)
    ANSIM_READY                                             (all of the above printed)

With ``--demo`` the center also listens for mutual TLS (port 50052, or a free port when
``--listen`` asks for port 0), and the data directory gets a development PKI (``pki/``: CA, localhost server
certificate, one client certificate per role) and a bearer token per role (``tokens/<role>.jwt``,
valid 12 hours), and the demo seeds of :mod:`reference_server.plugins` run.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from ansim.v1 import common_pb2

from ansim_sdk.cli import app
from reference_server import plugins
from reference_server.app import CenterServer, serve
from reference_server.config import (
    DEMO_DANGER_TEST_EXIT_ABSENCE,
    ROLE_NAMES,
    CenterSettings,
    ConfigError,
    load_settings,
)
from reference_server.context import ServicePlugin
from reference_server.interceptors.logging import configure_json_logging
from reference_server.security.devpki import DevPki, ensure_dev_pki
from reference_server.security.tokens import TokenIssuer, public_key_path

DEMO_CENTER = "demo"
DEMO_ISSUER = "ansim-demo"
DEMO_TOKEN_TTL = timedelta(hours=12)
#: Demo identities per role: (sub, agency, center); ``{center}`` is the demo center's name.
DEMO_IDENTITIES: dict[str, tuple[str, str, str]] = {
    "APP_USER": ("users/demo-user", "", ""),
    "GUARDIAN": ("guardians/demo-guardian", "", ""),
    "READER_GATEWAY": ("readers/demo-reader", "", "{center}"),
    "CENTER_OPERATOR": ("operators/demo-operator", "", "{center}"),
    "POLICE_OFFICER": ("officers/seoul-112/demo-officer", "agencies/seoul-112", ""),
    "FIRE_OFFICER": ("officers/seoul-119/demo-officer", "agencies/seoul-119", ""),
    "AUDITOR": ("auditors/demo-auditor", "", "{center}"),
    "PEER_CENTER": ("centers/demo-peer", "", "centers/demo-peer"),
    "DIRECTORY_ADMIN": ("admins/demo-admin", "", ""),
}


def token_path(data_dir: Path, role: str) -> Path:
    return data_dir / "tokens" / f"{role.lower()}.jwt"


def demo_pki(data_dir: Path) -> DevPki:
    return ensure_dev_pki(data_dir / "pki", sorted(ROLE_NAMES))


def demo_overrides(
    data_dir: Path, pki: DevPki, issuer: TokenIssuer, config_given: bool, mtls_listen: str
) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "tls": {
            "server_cert": pki.server_cert,
            "server_key": pki.server_key,
            "client_ca": pki.ca_cert,
            "mtls_listen": mtls_listen,
        },
        "tokens": {"issuers": {issuer.issuer: public_key_path(data_dir / "pki" / "token-issuer.key")}},
    }
    if not config_given:
        overrides.update(center_id=DEMO_CENTER, display_name="Ansim Interop demo center")
    return overrides


def write_demo_tokens(settings: CenterSettings, issuer: TokenIssuer) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for role in sorted(settings.roles):
        sub, agency, center = DEMO_IDENTITIES[role]
        token = issuer.issue(
            sub,
            common_pb2.Role.Value("ROLE_" + role),
            agency=agency,
            center=center.format(center=settings.center_name),
            ttl=DEMO_TOKEN_TTL,
        )
        path = token_path(settings.data_dir, role)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token + "\n", encoding="utf-8")
        path.chmod(0o600)
        written[role] = path
    return written


def announce(center: CenterServer, tokens: dict[str, Path], ca: Path | None) -> None:
    print(f"ANSIM_LISTENING {center.address}", flush=True)
    if center.mtls_address is not None:
        print(f"ANSIM_LISTENING_MTLS {center.mtls_address}", flush=True)
    if ca is not None:
        print(f"ANSIM_CA {ca}", flush=True)
    for role, path in tokens.items():
        print(f"ANSIM_TOKEN {role} {path}", flush=True)
    print("ANSIM_READY", flush=True)


def load_plugin(spec: str) -> ServicePlugin:
    """Import ``module:function`` as an extra service plugin (out-of-tree services, test probes)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise typer.BadParameter(f"{spec!r} is not module:function", param_hint="--plugin")
    try:
        plugin = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise typer.BadParameter(f"cannot load {spec!r}: {error}", param_hint="--plugin") from None
    if not callable(plugin):
        raise typer.BadParameter(f"{spec!r} is not callable", param_hint="--plugin")
    return cast(ServicePlugin, plugin)


async def run(
    *,
    listen: str | None,
    data_dir: Path | None,
    config: Path | None,
    demo: bool,
    insecure_dev: bool,
    extra_plugins: list[ServicePlugin],
    role: str | None = None,
) -> None:
    overrides: dict[str, Any] = {
        "listen": listen,
        "data_dir": data_dir,
        "insecure_dev": True if insecure_dev else None,
        "role": role,
    }
    issuer: TokenIssuer | None = None
    if demo:
        base = data_dir or Path("data")
        pki = demo_pki(base)
        issuer = TokenIssuer.create(DEMO_ISSUER, base / "pki" / "token-issuer.key")
        host = (listen or "127.0.0.1:50051").rpartition(":")[0]
        mtls_listen = f"{host}:0" if listen and listen.endswith(":0") else f"{host}:50052"
        demo_settings = demo_overrides(base, pki, issuer, config is not None, mtls_listen)
        overrides = {**demo_settings, **overrides, "data_dir": base}
    settings = load_settings(config, **overrides)
    tokens = write_demo_tokens(settings, issuer) if issuer is not None else {}
    directory = settings.role == "directory"
    center = await CenterServer.create(
        settings,
        [*(plugins.DIRECTORY_PLUGINS if directory else plugins.SERVICE_PLUGINS), *extra_plugins],
        demo_issuer=issuer,
        demo_seeds=plugins.DEMO_SEEDS if demo and not directory else (),
    )
    ca = (settings.tls.client_ca or None) if settings.uses_tls and demo else None

    def on_listening(c: CenterServer) -> None:
        if demo:
            write_conformance_declaration(c, settings.insecure_dev)
        announce(c, tokens, ca)

    await serve(center, on_listening)


def write_conformance_declaration(center: CenterServer, insecure: bool) -> Path:
    """Write the ready-made conformance declaration for this demo center, claiming exactly the
    server profiles whose services it runs (``<data-dir>/conformance/vendor.yaml``)."""
    from conformance.demo import write_demo_declaration  # the suite is optional at run time
    from conformance.profiles import PROFILE_SERVICES

    running = set(center.services)
    profiles = [p for p, names in PROFILE_SERVICES.items() if names and set(names) <= running]
    settings = center.ctx.settings
    exit_absence = settings.timers.danger_test_exit_absence or DEMO_DANGER_TEST_EXIT_ABSENCE
    return write_demo_declaration(
        settings.data_dir,
        center.address,
        mtls_address=center.mtls_address,
        profiles=profiles or ["center-core"],
        insecure=insecure,
        danger_exit_absence_seconds=int(exit_absence.total_seconds()),
    )


def serve_command(
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT to listen on (port 0 picks a free one)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Directory for the database and keys")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Center settings file (.yaml/.yml/.toml)")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Development PKI, a token per role and demo data in the data dir")
    ] = False,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Plain TCP for development; every LIVE request is refused")
    ] = False,
    plugin: Annotated[
        list[str] | None, typer.Option("--plugin", help="Extra service plugin module:function (repeatable)")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="'center' (default) or 'directory' (the national directory)")
    ] = None,
) -> None:
    """Run a reference center until SIGTERM / SIGINT."""
    configure_json_logging()
    if listen is None and config is None:
        listen = "127.0.0.1:50051"
    extra = [load_plugin(spec) for spec in plugin or ()]
    try:
        asyncio.run(
            run(
                listen=listen,
                data_dir=data_dir,
                config=config,
                demo=demo,
                insecure_dev=insecure_dev,
                extra_plugins=extra,
                role=role,
            )
        )
    except ConfigError as error:
        print(f"ansim serve: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


app.command("serve")(serve_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
