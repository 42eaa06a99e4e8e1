"""`ansim validate` as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "spec" / "examples"


def _ansim(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "ansim"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "ansim_sdk"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"COLUMNS": "200", "PATH": ""},
    )


def _write(tmp_path: Path, doc: object, name: str = "msg.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


LOCATION = {"latitude": 37.5796, "longitude": 126.977, "fixTime": "2025-03-14T09:26:53Z"}


@pytest.mark.parametrize("type_name", ["ansim.v1.Location", "Location"])
def test_valid_exit_0(tmp_path: Path, type_name: str) -> None:
    result = _ansim("validate", type_name, str(_write(tmp_path, LOCATION)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_nested_type_name(tmp_path: Path) -> None:
    path = _write(tmp_path, {"semiMajorM": 10, "semiMinorM": 5, "orientationDeg": 0})
    result = _ansim("validate", "Location.Ellipse", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_errors_report_path_rule_and_requirement(tmp_path: Path) -> None:
    doc = {**LOCATION, "latitude": 91, "confidencePercent": 120, "bogus": 1}
    result = _ansim("validate", "ansim.v1.Location", str(_write(tmp_path, doc)))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    lat = next(line for line in lines if "$.latitude" in line)
    assert "maximum 90" in lat and "LOC-002" in lat
    conf = next(line for line in lines if "$.confidencePercent" in line)
    assert "maximum 99" in conf and "LOC-003" in conf
    bogus = next(line for line in lines if "$.bogus" in line)
    assert "additionalProperties" in bogus


def test_nested_path_and_missing_required(tmp_path: Path) -> None:
    doc = {
        "latitude": 37.5,
        "longitude": 127.0,
        "polygon": {
            "vertices": [{"latitude": 37.5, "longitude": 127.0}, {"latitude": 95, "longitude": 127.1}]
        },
    }
    result = _ansim("validate", "Location", str(_write(tmp_path, doc)))
    assert result.returncode == 1
    out = result.stdout
    assert "$.polygon.vertices[1].latitude" in out and "maximum 90" in out
    assert "$.polygon.vertices" in out and "minItems 3" in out and "LOC-006" in out
    fix = next(line for line in out.splitlines() if "$.fixTime" in line)
    assert "required" in fix and "LOC-004" in fix


def test_cel_rule_reported_with_its_id(tmp_path: Path) -> None:
    doc = {**LOCATION, "ellipse": {"semiMajorM": 10, "semiMinorM": 50}}
    result = _ansim("validate", "Location", str(_write(tmp_path, doc)))
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "$.ellipse" in line)
    assert "LOC-005" in line and "protovalidate" in line


def test_example_files_through_cli() -> None:
    valid = EXAMPLES / "valid" / "ansim.v1.CivicAddress" / "full.json"
    invalid = EXAMPLES / "invalid" / "ansim.v1.CivicAddress" / "legal-dong-code-8-digits.json"
    assert _ansim("validate", "CivicAddress", str(valid)).returncode == 0
    result = _ansim("validate", "CivicAddress", str(invalid))
    assert result.returncode == 1
    assert "$.legalDongCode" in result.stdout and "pattern" in result.stdout and "LOC-008" in result.stdout


def test_unknown_type_exit_2(tmp_path: Path) -> None:
    result = _ansim("validate", "Locaton", str(_write(tmp_path, LOCATION)))
    assert result.returncode == 2
    assert "unknown message type" in result.stderr and "Location" in result.stderr


def test_unreadable_file_exit_2(tmp_path: Path) -> None:
    result = _ansim("validate", "Location", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_not_json_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    result = _ansim("validate", "Location", str(path))
    assert result.returncode == 2
    assert "not JSON" in result.stderr


def test_missing_argument_exit_2() -> None:
    assert _ansim("validate", "Location").returncode == 2
