"""What the example clients share: command line, channel, the harness's control API, retries.

The example clients are small reference clients for the three client profiles, built from the
generated stubs (``ansim.v1``) and the SDK's error parser. They follow a conformance harness's
scenario (``GET /scenario`` … ``POST /done``) and, with ``--misbehave``, break exactly one rule.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from ansim_sdk.errors import parse_rpc_error

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: Shared by every role: accept any server certificate on the TLS check (breaks SEC-004).
COMMON_MISBEHAVIOURS = {"trust-any-cert": "accept the untrusted listener's certificate (SEC-004)"}


def parse_args(
    role: str, misbehaviours: Mapping[str, str], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    choices = {**misbehaviours, **COMMON_MISBEHAVIOURS}
    parser = argparse.ArgumentParser(description=f"Example {role} client for the Ansim conformance harness.")
    parser.add_argument("--target", required=True, help="HOST:PORT of the (harness) center")
    parser.add_argument(
        "--control", required=True, help="URL of the harness control API, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--ca-file", help="CA certificate to trust (PEM); without it, plain text")
    parser.add_argument("--token", default="example-token", help="bearer token to send")
    parser.add_argument(
        "--misbehave",
        choices=sorted(choices),
        help="break exactly one rule: " + "; ".join(f"{k}: {v}" for k, v in sorted(choices.items())),
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    return parser.parse_args(argv)


class Control:
    """The harness's control API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            value = json.loads(response.read())
        assert isinstance(value, dict)
        return value

    async def scenario(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._call, "GET", "/scenario")

    async def done(self, step: str, report: Mapping[str, Any] | None = None) -> None:
        await asyncio.to_thread(self._call, "POST", "/done", {"step": step, **(report or {})})


def channel(target: str, ca_file: str | None) -> grpc.aio.Channel:
    options = [("grpc.enable_retries", 0)]
    if ca_file is None:
        return grpc.aio.insecure_channel(target, options=options)
    with open(ca_file, "rb") as handle:
        roots = handle.read()
    return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(roots), options=options)


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def retry_delay(error: grpc.aio.AioRpcError, attempt: int) -> float:
    """RetryInfo's delay when the error has one, else exponential backoff from 0.2 s with jitter."""
    parsed = parse_rpc_error(error)
    if parsed.retry_delay is not None:
        return float(parsed.retry_delay.total_seconds())
    backoff: float = min(0.2 * 2**attempt, 5.0) * (1 + random.random() / 4)
    return backoff


async def with_retries(
    attempt: Callable[[int], Awaitable[T]], *, attempts: int = 8, honour_delay: bool = True
) -> T:
    """Call ``attempt(n)`` until it succeeds or fails with a non-retryable code. Decides from the
    status code only, never from the message text or an unknown reason [ERR-005, ERR-006]."""
    for n in range(attempts):
        try:
            return await attempt(n)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or n == attempts - 1:
                raise
            await asyncio.sleep(retry_delay(error, n) if honour_delay else 0.0)
    raise AssertionError("unreachable")


async def tls_check(
    args: argparse.Namespace, address: str, probe: Callable[[grpc.aio.Channel], Awaitable[Any]]
) -> dict[str, Any]:
    """Connect to a listener whose certificate our CA does not sign; a correct client refuses it.
    With ``trust-any-cert`` the client fetches whatever certificate the server shows and trusts it."""
    if args.ca_file is None:
        return {"refused": None}
    if args.misbehave == "trust-any-cert":
        host, _, port = address.rpartition(":")
        pem = await asyncio.to_thread(ssl.get_server_certificate, (host, int(port)))
        creds = grpc.ssl_channel_credentials(pem.encode())
        ch = grpc.aio.secure_channel(address, creds)
    else:
        ch = channel(address, args.ca_file)
    try:
        await probe(ch)
    except grpc.aio.AioRpcError as error:
        return {"refused": error.code() == grpc.StatusCode.UNAVAILABLE}
    finally:
        await ch.close(None)
    return {"refused": False}


async def drive(
    control: Control,
    handlers: Mapping[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]],
    within_s: float,
) -> None:
    """Follow the harness's scenario: do each step, report it done, until it is finished."""

    async def loop() -> None:
        while True:
            step = await control.scenario()
            name = str(step["step"])
            if name == "finished":
                return
            handler = handlers.get(name)
            if handler is None:
                raise SystemExit(f"the harness asks for step {name!r}, which this client does not know")
            report = await handler(step)
            await control.done(name, report)

    await asyncio.wait_for(loop(), within_s)
