"""The harness's own throw-away PKI: a development CA and a server certificate it signs (for the
main listener), and a self-signed certificate no client may accept (for the untrusted listener,
SEC-004). The client under test is given ``ca.pem`` to trust; nothing here is for production."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS = ("localhost", "127.0.0.1", "::1")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ansim Interop conformance harness"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _san() -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in HOSTS:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    issuer: x509.Name | None,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(_san(), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


class HarnessPki:
    """``ca.pem`` (give it to the client), ``server.pem|key`` and ``untrusted.pem|key``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("Ansim conformance harness CA", None, ca_key, ca_key, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _cert("localhost", ca.subject, server_key, ca_key, ca=False)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue = _cert("localhost", None, rogue_key, rogue_key, ca=False)
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert = server.public_bytes(serialization.Encoding.PEM)
        self.server_key = _pem_key(server_key)
        self.untrusted_cert = rogue.public_bytes(serialization.Encoding.PEM)
        self.untrusted_key = _pem_key(rogue_key)

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"
