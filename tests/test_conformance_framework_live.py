"""The conformance suite against a real reference center (``ansim serve --demo`` on loopback).

Until the center's own services land, the center gets stand-in center-core servicers (CameraService
answering ListCameras, EmergencyService and DispatchService unimplemented) through a plugin in this
module, so the generic cases exercise the real interceptors: tokens, error statuses, malformed
bytes, TLS. Once reference_server.plugins registers real services, the stand-ins are not loaded and
the test checks the report instead of the verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from typer.testing import CliRunner

from ansim_sdk.cli import app
from conformance.demo import write_demo_declaration
from reference_server import plugins
from tests.support.center import CenterProcess, start_center

STAND_INS = not plugins.SERVICE_PLUGINS
PLUGIN = "tests.test_conformance_framework_live:register_stand_ins"


def register_stand_ins(ctx: Any, server: grpc.aio.Server) -> Sequence[str]:
    """Service plugin: minimal center-core servicers (loaded in the center process)."""
    from ansim.v1 import camera_pb2, camera_pb2_grpc, dispatch_pb2_grpc, emergency_pb2_grpc

    class Cameras(camera_pb2_grpc.CameraServiceServicer):
        async def ListCameras(self, request: Any, context: Any) -> camera_pb2.ListCamerasResponse:
            return camera_pb2.ListCamerasResponse()

    camera_pb2_grpc.add_CameraServiceServicer_to_server(Cameras(), server)
    emergency_pb2_grpc.add_EmergencyServiceServicer_to_server(
        emergency_pb2_grpc.EmergencyServiceServicer(), server
    )
    dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(
        dispatch_pb2_grpc.DispatchServiceServicer(), server
    )
    return ["ansim.v1.CameraService", "ansim.v1.EmergencyService", "ansim.v1.DispatchService"]


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    process = start_center(tmp_path_factory.mktemp("center"), plugins=[PLUGIN] if STAND_INS else [])
    yield process
    process.terminate()


def _run(center: CenterProcess, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    config = center.data_dir / "conformance" / "vendor.yaml"
    if not config.is_file():  # the demo center writes it itself once the server engineer wires it in
        write_demo_declaration(center.data_dir, center.address, mtls_address=center.mtls_address)
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["conformance", "run", "--config", str(config), "--report-dir", str(reports), *extra]
    )
    report = json.loads((reports / "conformance-report.json").read_text(encoding="utf-8"))
    assert (reports / "conformance-junit.xml").is_file() and (reports / "conformance-report.html").is_file()
    return result.exit_code, report, result.output


@pytest.mark.slow
def test_generic_cases_against_the_reference_center(center: CenterProcess, tmp_path: Path) -> None:
    code, report, output = _run(center, tmp_path)
    verdicts = {c["id"]: c["verdict"] for c in report["cases"]}
    assert set(verdicts.values()) <= {"pass", "fail", "error", "skip", "not-applicable", "not-run"}
    assert report["target"] == center.address and report["exit_code"] == code
    if not STAND_INS:
        return
    must = [c for c in report["cases"] if c["level"] == "MUST" and c["verdict"] != "pass"]
    assert not must, output
    assert report["profiles"]["center-core"]["verdict"] == "pass"
    assert code == 0, output
    token_missing = next(c for c in report["cases"] if c["id"] == "TC_SEC_001_SRV")
    exchange = token_missing["exchanges"][0]
    assert exchange["code"] == "UNAUTHENTICATED" and exchange["error"]["reason"] == "TOKEN_MISSING"
    assert exchange["identity"] == "no token"


@pytest.mark.slow
def test_known_failures_and_selection(center: CenterProcess, tmp_path: Path) -> None:
    if not STAND_INS:
        pytest.skip("verdicts depend on the real services")
    known = tmp_path / "known.yaml"
    known.write_text("TC_SEC_001_SRV: {verdict: fail}\n", encoding="utf-8")
    code, report, output = _run(center, tmp_path, "--only", "TC_SEC_001_SRV", "--known-failures", str(known))
    assert code == 1, output
    assert report["stale_known_failures"] == ["TC_SEC_001_SRV: now passes: remove it from the known failures"]
    # --only leaves the other MUST cases not run: the profile cannot pass.
    assert report["profiles"]["center-core"]["verdict"] == "incomplete"
