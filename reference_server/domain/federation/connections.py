"""Outgoing connections of a center: to the directory and to peer centers, over mutual TLS.

Every call carries a PEER_CENTER bearer token naming this center, signed with its federation token
key, and presents its registered client certificate. Before a channel to a peer is used, the peer's
server certificate is fetched with a TLS handshake for the endpoint's ``tls_server_name`` (SNI and
name verification against the federation CA) and its fingerprint compared with the peer's
registered, unexpired pins; a mismatch aborts before any request is sent [FED-002]. (gRPC Python
does not expose the server certificate of a channel, hence the separate handshake; the channel then
verifies the same name against the same CA.)
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import grpc.aio
from ansim.v1 import common_pb2, directory_pb2

from reference_server.app import split_host_port
from reference_server.domain.federation.registry import live_pins
from reference_server.security.tokens import TokenIssuer

TOKEN_TTL = timedelta(minutes=30)
CHANNEL_OPTIONS = (
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


class PeerIdentityMismatch(Exception):
    """The peer presented a certificate that is not one of its registered, unexpired pins [FED-002]."""


@dataclass(frozen=True)
class Identity:
    """This center's credentials for outgoing calls."""

    center: str
    ca_cert: Path
    client_cert: Path
    client_key: Path
    issuer: TokenIssuer

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_cert.read_bytes(),
            private_key=self.client_key.read_bytes(),
            certificate_chain=self.client_cert.read_bytes(),
        )


class TokenCache:
    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        self._token = ""
        self._until = 0.0

    def metadata(self) -> tuple[tuple[str, str], ...]:
        now = time.monotonic()
        if now >= self._until:
            self._token = self._identity.issuer.issue(
                self._identity.center,
                common_pb2.ROLE_PEER_CENTER,
                center=self._identity.center,
                ttl=TOKEN_TTL,
            )
            self._until = now + TOKEN_TTL.total_seconds() / 2
        return (("authorization", f"Bearer {self._token}"),)


async def server_fingerprint(target: str, server_name: str, ca_cert: Path, deadline_s: float) -> str:
    """SHA-256 of the DER certificate the server at ``target`` presents for ``server_name``."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.set_alpn_protocols(["h2"])
    host, port = split_host_port(target)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=server_name), deadline_s
    )
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if der is None:
            raise PeerIdentityMismatch("the peer presented no certificate")
        return hashlib.sha256(der).hexdigest()
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
        del reader


class PeerChannels:
    """Channels to peers, opened after the pin check and reused while the peer's pins still match."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.tokens = TokenCache(identity)
        self._channels: dict[str, tuple[str, grpc.aio.Channel]] = {}

    async def channel(
        self, entry: directory_pb2.CenterEntry, now: datetime, deadline_s: float
    ) -> grpc.aio.Channel:
        if not entry.endpoints:
            raise PeerIdentityMismatch(f"{entry.name} has no endpoint")
        endpoint = entry.endpoints[0]
        key = f"{endpoint.target}|{endpoint.tls_server_name}|{','.join(sorted(live_pins(entry, now)))}"
        cached = self._channels.get(entry.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        fingerprint = await server_fingerprint(
            endpoint.target, endpoint.tls_server_name, self.identity.ca_cert, deadline_s
        )
        if fingerprint not in live_pins(entry, now):
            raise PeerIdentityMismatch(
                f"{entry.name} presented certificate {fingerprint[:16]}…, not a registered pin"
            )
        channel = grpc.aio.secure_channel(
            endpoint.target,
            self.identity.credentials(),
            options=[*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", endpoint.tls_server_name)],
        )
        if cached is not None:
            await cached[1].close(None)
        self._channels[entry.name] = (key, channel)
        return channel

    async def forget(self, name: str) -> None:
        cached = self._channels.pop(name, None)
        if cached is not None:
            await cached[1].close(grace=None)

    async def close(self) -> None:
        for _, channel in self._channels.values():
            await channel.close(None)
        self._channels.clear()


def directory_channel(identity: Identity, target: str, server_name: str | None) -> grpc.aio.Channel:
    options: list[tuple[str, int | str]] = list(CHANNEL_OPTIONS)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(target, identity.credentials(), options=options)
