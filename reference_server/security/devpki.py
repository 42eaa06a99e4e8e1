"""Development PKI: a throw-away CA, a localhost server certificate and one client certificate per role.

For demos and tests only. Everything is EC P-256; private keys are written with mode 0600. The
layout under the target directory::

    ca.pem  ca.key  server.pem  server.key  clients/<role>.pem  clients/<role>.key

where ``<role>`` is the Role name without ``ROLE_``, lower-case (``police_officer``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class DevPki:
    """Paths of a development PKI directory."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def client_cert(self, role: str) -> Path:
        return self.directory / "clients" / f"{role.lower()}.pem"

    def client_key(self, role: str) -> Path:
        return self.directory / "clients" / f"{role.lower()}.key"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600 from creation, no window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ansim Interop development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _leaf(
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    hosts: Iterable[str],
    now: datetime,
) -> tuple[bytes, bytes]:
    key = new_key()
    cert = (
        _builder(_name(common_name), ca_cert.subject, key, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def create_dev_pki(directory: Path, roles: Iterable[str], hosts: Iterable[str] = DEFAULT_HOSTS) -> DevPki:
    """Create a fresh CA, server certificate and per-role client certificates under ``directory``."""
    pki = DevPki(directory)
    now = datetime.now(UTC)
    ca_key = new_key()
    ca_name = _name("Ansim Interop development CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(pki.ca_key, key_pem(ca_key))
    _write_public(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    hosts = tuple(hosts)
    cert, key = _leaf(hosts[0], ca_cert, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, hosts, now)
    write_private(pki.server_key, key)
    _write_public(pki.server_cert, cert)
    for role in roles:
        label = role.lower()
        cert, key = _leaf(
            f"{label}.clients.ansim.test",
            ca_cert,
            ca_key,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            [f"{label.replace('_', '-')}.clients.ansim.test"],
            now,
        )
        write_private(pki.client_key(role), key)
        _write_public(pki.client_cert(role), cert)
    return pki


def ensure_dev_pki(directory: Path, roles: Iterable[str], hosts: Iterable[str] = DEFAULT_HOSTS) -> DevPki:
    """Reuse the PKI under ``directory`` if it is complete and not about to expire, else create one."""
    roles = tuple(roles)
    pki = DevPki(directory)
    paths = [pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key]
    paths += [p for r in roles for p in (pki.client_cert(r), pki.client_key(r))]
    if all(p.is_file() for p in paths):
        ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        if ca.not_valid_after_utc - datetime.now(UTC) > timedelta(days=1):
            return pki
    return create_dev_pki(directory, roles, hosts)
