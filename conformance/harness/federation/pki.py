"""The federation harness's PKI, kept in one directory so that a vendor can configure its TEST
deployment once and rerun the suite: a CA, server certificates for the directory and every peer,
an *impostor* certificate (same CA and name, never pinned) [FED-002], a client certificate and a
PEER_CENTER token key the center under test may use as its federation identity, and the Ed25519
directory keys (the signing key, an unpublished one, one whose validity has ended) [DIR-018].

Files are created when missing and reused afterwards (recreated 2 days before they expire).
Nothing here is for production: the keys are throw-away test material.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=30)
RENEW_BEFORE = timedelta(days=2)
#: TLS server name of the harness directory (also valid for 127.0.0.1, ::1 and localhost).
DIRECTORY_NAME = "directory.ansim-harness.test"
DOMAIN = "ansim-harness.test"
ED25519_KEYS = ("harness-dir-1", "harness-dir-unlisted", "harness-dir-ended")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ansim Interop conformance federation harness"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the DER certificate, lower-case hex (a CertificatePin)."""
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class FederationPki:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca_key, self._ca = self._load_ca()

    # -- files -------------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def cert_file(self, label: str) -> Path:
        return self.dir / f"{label}.pem"

    def key_file(self, label: str) -> Path:
        return self.dir / f"{label}.key"

    def _fresh(self, path: Path) -> bool:
        if not path.is_file():
            return False
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        return cert.not_valid_after_utc - RENEW_BEFORE > datetime.now(UTC)

    def _load_ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key_path = self.dir / "ca.key"
        if self._fresh(self.ca_file) and key_path.is_file():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key, x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("Ansim federation harness CA"))
            .issuer_name(_name("Ansim federation harness CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        for stale in self.dir.glob("*.pem"):  # every leaf of an old CA is stale
            if stale != self.ca_file:
                stale.unlink()
        return key, ca

    def leaf(
        self, label: str, dns_names: list[str], *, client: bool = False, local: bool = True
    ) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) of a leaf signed by the harness CA, created when missing."""
        cert_path, key_path = self.cert_file(label), self.key_file(label)
        if self._fresh(cert_path) and key_path.is_file():
            return cert_path.read_bytes(), key_path.read_bytes()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        if not client and local:
            names += [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(dns_names[0] if dns_names else label))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert_pem)
        return cert_pem, _pem_key(key)

    def center_identity(self) -> tuple[Path, Path, Path]:
        """A client certificate, key and PEER_CENTER token key (EC P-256 PKCS#8) the center under test
        may use for its outgoing federation calls (``center-client.pem|key``, ``center-token.key``)."""
        self.leaf("center-client", ["center-under-test." + DOMAIN], client=True)
        token_key = self.dir / "center-token.key"
        if not token_key.is_file():
            token_key.write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
            token_key.chmod(0o600)
        return self.cert_file("center-client"), self.key_file("center-client"), token_key

    def ed25519(self, key_id: str) -> ed25519.Ed25519PrivateKey:
        path = self.dir / f"{key_id}.ed25519"
        if path.is_file():
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            assert isinstance(key, ed25519.Ed25519PrivateKey)
            return key
        key = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(_pem_key(key))
        path.chmod(0o600)
        return key
