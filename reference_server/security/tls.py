"""gRPC credentials: the server's (TLS, client certificates optional or required) and clients'."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from reference_server.config import TlsSettings

#: grpc auth-context key holding the peer's PEM certificate.
PEER_CERT_KEY = "x509_pem_cert"


def _key_pair(tls: TlsSettings) -> list[tuple[bytes, bytes]]:
    if tls.server_cert is None or tls.server_key is None:
        raise ValueError("TLS needs tls.server_cert and tls.server_key")
    return [(tls.server_key.read_bytes(), tls.server_cert.read_bytes())]


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """Server-authenticated TLS for the main listener (no client certificate is asked for)."""
    return grpc.ssl_server_credentials(_key_pair(tls))


def mtls_server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """Mutual TLS for the second listener: a client certificate signed by ``client_ca`` is required."""
    if tls.client_ca is None:
        raise ValueError("mutual TLS needs tls.client_ca")
    return grpc.ssl_server_credentials(
        _key_pair(tls), root_certificates=tls.client_ca.read_bytes(), require_client_auth=True
    )


def channel_credentials(
    ca_cert: Path, client_cert: Path | None = None, client_key: Path | None = None
) -> grpc.ChannelCredentials:
    """Client channel credentials trusting ``ca_cert``, optionally presenting a client certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca_cert.read_bytes(),
        private_key=client_key.read_bytes() if client_key is not None else None,
        certificate_chain=client_cert.read_bytes() if client_cert is not None else None,
    )


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 (hex, lower-case) of a PEM certificate's DER form."""
    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


def peer_fingerprint(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """Fingerprint of the client certificate in a call's auth context, None without one."""
    certs = list(auth_context.get(PEER_CERT_KEY, ()))
    return fingerprint(certs[0]) if certs else None
