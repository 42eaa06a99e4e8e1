"""Start a demo center pointed at the suite's federation harness (environment only) and write its
declaration with a ``federation_harness`` section, for tests that run the suite through the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from conformance.harness.federation.__main__ import reference_environment
from tests.support.center import REPO_ROOT, CenterProcess, server_env, start_center

#: The harness uses its port and the next 9.
PORTS = 10
RELOAD_S = 2
RECOVERY_FIRST_S = 3


def free_port_block() -> int:
    """A base port with the next PORTS - 1 ports free too (checked by binding each)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + PORTS > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + PORTS):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no block of free ports for the federation harness")


def harness_environment(pki: Path, listen: str) -> dict[str, str]:
    """The ``ANSIM_`` environment pointing a center at a harness on ``listen`` with PKI in ``pki``."""
    return reference_environment(pki, listen, reload_s=RELOAD_S, recovery_s=RECOVERY_FIRST_S)


def write_harness_declaration(center: CenterProcess, listen: str, pki: Path) -> Path:
    """The center's written declaration plus a ``federation_harness`` section, saved beside it."""
    written = center.data_dir / "conformance" / "vendor.yaml"
    declaration = yaml.safe_load(written.read_text(encoding="utf-8"))
    declaration["federation_harness"] = {
        "listen": listen,
        "pki_dir": str(pki),
        "registry_reload_seconds": RELOAD_S,
        "recovery_first_seconds": RECOVERY_FIRST_S,
    }
    config = written.with_name("federation-harness.yaml")
    config.write_text(yaml.safe_dump(declaration, allow_unicode=True), encoding="utf-8")
    return config


def start_center_with_harness(base: Path) -> tuple[CenterProcess, Path]:
    """A ``--demo`` center using the harness directory, and its declaration with the harness."""
    listen = f"127.0.0.1:{free_port_block()}"
    pki = base / "harness-pki"
    environment = harness_environment(pki, listen)
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        center = start_center(base / "center")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return center, write_harness_declaration(center, listen, pki)


def run_federation_cases(
    config: Path, case_ids: Iterable[str], reports: Path, timeout_s: float
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``ansim conformance run --profile federation --only <each of case_ids>`` with ``config``, as a
    real process; its result and the JSON report it wrote to ``reports``."""
    command = [sys.executable, "-m", "ansim_sdk", "conformance", "run", "--config", str(config)]
    command += ["--profile", "federation", "--report-dir", str(reports)]
    for case_id in case_ids:
        command += ["--only", case_id]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=timeout_s
    )
    report = json.loads((reports / "conformance-report.json").read_text(encoding="utf-8"))
    return result, report
