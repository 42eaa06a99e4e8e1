"""``ansim video verify-token``: check a video stream token offline, as a video gateway does (§12).

The gateway holds the center's published keys (the JSON of a GetVideoGatewayKeys answer, fetched
periodically) and checks each token with no call to the center: signature by a published key,
the key's validity window, the token's ``nbf``/``exp``, and optionally the audience and camera.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ansim_sdk.cli import app
from reference_server.domain.video import tokens

video_app = typer.Typer(
    help="Video stream tokens: what a video gateway checks offline.", no_args_is_help=True
)
app.add_typer(video_app, name="video")

_console = Console()


def _rfc3339_seconds(text: str | None) -> float | None:
    if not text:
        return None
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _header(token: str) -> dict[str, Any]:
    head = token.split(".", 1)[0]
    parsed: dict[str, Any] = json.loads(tokens.b64url_decode(head))
    return parsed


def check_token(
    token: str, keys: dict[str, Any], *, now: float, audience: str | None, camera: str | None
) -> tuple[dict[str, object] | None, str]:
    """Verify ``token`` against the published ``keys``; return (claims, "") or (None, reason)."""
    try:
        kid = _header(token).get("kid")
    except (ValueError, IndexError) as error:
        return None, f"not a compact JWS: {error}"
    key = next((k for k in keys.get("keys", []) if k.get("keyId") == kid), None)
    if key is None:
        return None, f"no published key with id {kid!r}"
    not_before, not_after = _rfc3339_seconds(key.get("notBefore")), _rfc3339_seconds(key.get("notAfter"))
    if (not_before is not None and now < not_before) or (not_after is not None and now >= not_after):
        return None, f"key {kid!r} is outside its validity window"
    try:
        claims = tokens.verify(token, base64.b64decode(key["publicKey"]))
    except Exception as error:  # any signature or format fault makes the token invalid
        return None, f"signature or header invalid: {str(error) or type(error).__name__}"
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int) or not isinstance(exp, int):
        return None, "nbf/exp missing"
    if now < nbf or now >= exp:
        return None, "token not yet valid or expired"
    if audience is not None and claims.get("aud") != audience:
        return None, f"audience {claims.get('aud')!r} is not {audience!r}"
    if camera is not None and claims.get("camera") != camera:
        return None, f"token is for camera {claims.get('camera')!r}, not {camera!r}"
    return claims, ""


@video_app.command("verify-token")
def verify_token(
    keys_file: Annotated[Path, typer.Option("--keys", help="GetVideoGatewayKeys answer as JSON")],
    token: Annotated[str | None, typer.Argument(help="The compact JWS; omit to read --token-file")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="File holding the token")] = None,
    audience: Annotated[
        str | None, typer.Option("--audience", help="Expected `aud` (gateway origin)")
    ] = None,
    camera: Annotated[str | None, typer.Option("--camera", help="Expected camera resource name")] = None,
) -> None:
    """Verify a video stream token offline; print its claims; exit 1 if it must be refused."""
    if token is None and token_file is None:
        raise typer.BadParameter("give a token or --token-file")
    text = token if token is not None else token_file.read_text(encoding="utf-8").strip()  # type: ignore[union-attr]
    try:
        keys = json.loads(keys_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        _console.print(f"[red]cannot read keys: {error}[/red]")
        raise typer.Exit(2) from None
    claims, reason = check_token(text, keys, now=time.time(), audience=audience, camera=camera)
    if claims is None:
        _console.print(f"[bold red]REFUSE[/bold red] {reason}")
        raise typer.Exit(1)
    table = Table(title="token valid: serve the stream", show_header=False)
    for name, value in claims.items():
        table.add_row(name, str(value))
    _console.print(table)
