"""A national federation on loopback: a directory and several centers as separate ``ansim serve``
processes, one shared development CA, one certificate pair per center, and one token issuer.

Each process gets its own data directory (embedded store) under a temporary root and free ports
(port 0); the cluster reads the addresses from the processes' ``ANSIM_LISTENING*`` lines and keeps
their JSON log lines (logger ``ansim.federation``) for the timeline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reference_server.demo.readiness import wait_until_ready
from reference_server.security.devpki import DevPki, create_dev_pki, key_pem, new_key, write_private
from reference_server.security.tokens import TokenIssuer, public_key_path

ISSUER = "ansim-demo"
READY_TIMEOUT_S = 20.0
#: The TEST-mode timers the spec lets a deployment shorten (GRD-005 notification steps, TRIP-003
#: overdue grace and escalation delay), in seconds, so that the child-safety ladder and an overdue
#: safe trip play within the demo; LIVE and EXERCISE requests keep the normative values.
TEST_TIMERS = {"guardian_test_step": 5, "trip_test_overdue_grace": 5, "trip_test_escalation_delay": 5}


@dataclass(frozen=True)
class CenterCerts:
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    server_name: str

    def fingerprints(self) -> list[str]:
        return [_fingerprint(self.server_cert), _fingerprint(self.client_cert)]


def _fingerprint(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def issue_pair(pki: DevPki, label: str, server_name: str) -> CenterCerts:
    """A server and a client certificate for one center, signed by the shared CA."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    now = datetime.now(UTC)
    out = pki.directory / "centers" / label
    paths: dict[str, Path] = {}
    for kind, usage, names in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, [server_name, "localhost"]),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [f"{label}.clients.ansim.test"]),
    ):
        key = new_key()
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        if kind == "server":
            import ipaddress

            sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        paths[f"{kind}_cert"] = out / f"{kind}.pem"
        paths[f"{kind}_key"] = out / f"{kind}.key"
        out.mkdir(parents=True, exist_ok=True)
        paths[f"{kind}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_private(paths[f"{kind}_key"], key_pem(key))
    return CenterCerts(server_name=server_name, **paths)


@dataclass
class Process:
    """One running ``ansim serve`` process."""

    name: str
    popen: subprocess.Popen[str]
    address: str = ""
    mtls_address: str = ""
    logs: list[dict[str, Any]] = field(default_factory=list)
    log_file: Path | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def _read_stdout(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if line.startswith("ANSIM_LISTENING_MTLS "):
                self.mtls_address = line.split()[1]
            elif line.startswith("ANSIM_LISTENING "):
                self.address = line.split()[1]
            elif line.startswith("ANSIM_READY"):
                self._ready.set()

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None
        sink = self.log_file.open("a", encoding="utf-8") if self.log_file else None
        for line in self.popen.stderr:
            if sink is not None:
                sink.write(line)
                sink.flush()
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    self.logs.append(record)

    def start_readers(self) -> None:
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:  # noqa: ASYNC109
        await wait_until_ready(self.popen, self._ready, self.name, timeout, poll_s=0.05)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: the center dies mid-scenario, without a graceful shutdown."""
        if self.alive:
            self.popen.kill()
            self.popen.wait(5)

    def terminate(self) -> None:
        """SIGTERM, without waiting for the process to finish its graceful shutdown."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> None:
        """Wait for a terminated process to exit; SIGKILL it after 5 s."""
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def stop(self) -> None:
        self.terminate()
        self.wait_stopped()


@dataclass
class Cluster:
    """The PKI, the issuer and the processes of one demo run."""

    root: Path
    pki: DevPki
    issuer: TokenIssuer
    certs: dict[str, CenterCerts] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> Cluster:
        pki = create_dev_pki(
            root / "pki", ["DIRECTORY_ADMIN", "APP_USER", "CENTER_OPERATOR", "POLICE_OFFICER"]
        )
        issuer = TokenIssuer.create(ISSUER, root / "pki" / "token-issuer.key")
        return cls(root, pki, issuer)

    def certs_for(self, center_id: str) -> CenterCerts:
        if center_id not in self.certs:
            self.certs[center_id] = issue_pair(self.pki, center_id, f"{center_id}.centers.ansim.test")
        return self.certs[center_id]

    def config(
        self,
        center_id: str,
        display_name: str,
        *,
        role: str = "center",
        directory: str | None = None,
        agencies: list[dict[str, str]] | None = None,
    ) -> Path:
        certs = self.certs_for(center_id)
        data_dir = self.root / center_id
        data_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "center_id": center_id,
            "display_name": display_name,
            "listen": "127.0.0.1:0",
            "data_dir": str(data_dir),
            "role": role,
            "tls": {
                "server_cert": str(certs.server_cert),
                "server_key": str(certs.server_key),
                "client_ca": str(self.pki.ca_cert),
                "mtls_listen": "127.0.0.1:0",
            },
            "tokens": {"issuers": {ISSUER: str(public_key_path(self.root / "pki" / "token-issuer.key"))}},
        }
        if role == "center":
            config["federation"] = {
                "ca_cert": str(self.pki.ca_cert),
                "client_cert": str(certs.client_cert),
                "client_key": str(certs.client_key),
                "peer_token_key": str(self.root / "pki" / "token-issuer.key"),
                "peer_token_issuer": ISSUER,
                "directory_server_name": self.certs_for("directory").server_name,
                "registry_reload": 1,
                "recovery_first": 1,  # FED-015's 30 s, shortened so the demo stays under a minute
            }
            config["timers"] = dict(TEST_TIMERS)
            if directory:
                config["directory_endpoint"] = directory
            if agencies:  # the situation rooms this center has a dispatch connection to
                config["agencies"] = agencies
        path = data_dir / "center.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        return path

    def launch(self, name: str, config: Path) -> Process:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        popen = subprocess.Popen(
            [sys.executable, "-m", "reference_server.cli", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        process = Process(name, popen, log_file=config.parent / "server.log")
        process.start_readers()
        self.processes[name] = process
        return process

    def restart(self, name: str) -> Process:
        """Start a killed process again as a supervisor would: the same configuration, data directory
        (its durable store) and ports, so peers and the directory reach it where they did before."""
        old = self.processes[name]
        if old.alive:
            raise RuntimeError(f"{name} is still running")
        config = Path(str(list(old.popen.args)[-1]))  # type: ignore[arg-type]
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        settings["listen"] = old.address
        settings["tls"]["mtls_listen"] = old.mtls_address
        config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
        return self.launch(name, config)

    def stop_all(self) -> None:
        """Signal every process first, then wait: they shut down in parallel, not one by one."""
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait_stopped()

    def federation_logs(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for name, process in self.processes.items():
            for record in list(process.logs):
                if str(record.get("logger", "")).startswith("ansim.federation") and record.get("event"):
                    yield name, record
