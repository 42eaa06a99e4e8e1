"""gRPC channels to the target, built from the declaration's transport settings."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import grpc.aio

from conformance.declaration import ClientCert, Tls

#: No transparent retries, no waiting for a server that is down: a case sees exactly what the target
#: did. Messages up to 16 MiB.
CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
)


def credentials_for(tls: Tls, role: str | None) -> grpc.ChannelCredentials | None:
    """TLS credentials for a connection as ``role`` (its client certificate if declared); None for
    an insecure declaration."""
    if tls.insecure:
        return None
    root = tls.ca_file.read_bytes() if tls.ca_file else None
    cert = client_cert_for(tls, role)
    if cert is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=cert.key_file.read_bytes(),
        certificate_chain=cert.cert_file.read_bytes(),
    )


def client_cert_for(tls: Tls, role: str | None) -> ClientCert | None:
    return tls.client_certs.get(role or "") or tls.client_certs.get("default")


def open_channel(
    target: str,
    tls: Tls,
    role: str | None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    *,
    plaintext: bool = False,
) -> grpc.aio.Channel:
    """A channel to ``target``; ``plaintext`` forces a plain-text connection (SEC-001 probe)."""
    options: list[tuple[str, int | str]] = list(CHANNEL_OPTIONS)
    if tls.server_name and not plaintext:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    creds = None if plaintext else credentials_for(tls, role)
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=list(interceptors))
    if tls.mtls_target and client_cert_for(tls, role) is not None:
        target = tls.mtls_target
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=list(interceptors))
