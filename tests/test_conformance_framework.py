"""The conformance framework itself, offline: CLI commands, id lock, coverage, known-failure
staleness, profile verdicts, report writers, declaration errors, descriptor comparison, tokens."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from ansim.v1 import camera_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from typer.testing import CliRunner

from ansim_sdk.cli import app
from conformance.cases import load_cases
from conformance.context import CaseContext
from conformance.coverage import compute_coverage, coverage_lines
from conformance.declaration import DeclarationError, parse_declaration
from conformance.demo import demo_declaration
from conformance.descriptors import compare
from conformance.known_failures import KnownFailure, apply_known_failures, load_known_failures
from conformance.lockfile import append_and_update, check_lock
from conformance.registry import Registry
from conformance.reports import write_reports
from conformance.requirements import load_requirements
from conformance.results import CaseResult, ProfileVerdict, RunResult, Verdict, evaluate_profile
from conformance.tokens import Tokens
from conformance.wire import MALFORMED_PAYLOADS, append_unknown_fields

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["conformance", *args])


# --- CLI: list, check-ids, coverage ------------------------------------------------------------------


def test_list_shows_every_case_with_its_requirements() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "TC_SEC_001_SRV" in result.output and "SEC-005" in result.output
    rows = json.loads(invoke("list", "--json").output)
    assert {r["id"] for r in rows} == {c.id for c in load_cases().cases}
    assert all(r["requirements"] and r["level"] in ("MUST", "SHOULD", "MAY") for r in rows)


def test_check_ids_passes_on_the_committed_lock() -> None:
    result = invoke("check-ids")
    assert result.exit_code == 0, result.output
    assert "check-ids: OK" in result.output


def test_check_ids_fails_on_a_missing_id_and_append_fixes_it(tmp_path: Path) -> None:
    lock = tmp_path / "test_ids.lock"
    lock.write_text("# empty\n", encoding="utf-8")
    result = invoke("check-ids", "--lock", str(lock))
    assert result.exit_code == 1
    assert "TC_SEC_001_SRV: not in the lock; append: TC_SEC_001_SRV ERR-001,ERR-002,SEC-005" in result.output
    assert invoke("check-ids", "--lock", str(lock), "--append").exit_code == 0
    assert invoke("check-ids", "--lock", str(lock)).exit_code == 0
    assert "# empty" in lock.read_text(encoding="utf-8")


def _registry() -> Registry:
    reg = Registry()

    @reg.case(
        "TC_ABC_001_SRV",
        title="t",
        requirements=["GEN-002", "GEN-003"],
        profile="center-core",
        kind="positive",
    )
    async def one(ctx: CaseContext) -> None: ...

    return reg


def test_lock_rules() -> None:
    cases = _registry().cases
    assert check_lock(cases, "TC_ABC_001_SRV GEN-002,GEN-003\n").ok
    shrunk = check_lock(cases, "TC_ABC_001_SRV GEN-002,GEN-003,GEN-004\n")
    assert not shrunk.ok and "shrank" in shrunk.errors[0]
    grown = check_lock(cases, "TC_ABC_001_SRV GEN-002\n")
    assert grown.ok and "grew" in grown.warnings[0]
    assert "TC_ABC_001_SRV GEN-002,GEN-003" in append_and_update("TC_ABC_001_SRV GEN-002\n", grown)
    gone = check_lock(cases, "TC_ABC_001_SRV GEN-002,GEN-003\nTC_ABC_002_SRV GEN-004\n")
    assert not gone.ok and "mark it withdrawn" in gone.errors[0]
    assert check_lock(cases, "TC_ABC_001_SRV GEN-002,GEN-003\nTC_ABC_002_SRV GEN-004 withdrawn\n").ok
    reused = check_lock(cases, "TC_ABC_001_SRV GEN-002,GEN-003 withdrawn\n")
    assert not reused.ok and "must not be reused" in reused.errors[0]
    twice = check_lock(cases, "TC_ABC_001_SRV GEN-002,GEN-003\nTC_ABC_001_SRV GEN-002,GEN-003\n")
    assert not twice.ok
    assert not check_lock(cases, "TC_ABC_001_SRV\n").ok


def test_case_declaration_errors_fail_at_import() -> None:
    reg = Registry()
    kw: dict[str, Any] = {"title": "t", "kind": "positive"}
    with pytest.raises(ValueError, match="TC_<AREA>"):
        reg.case("TC-1", requirements=["GEN-002"], profile="center-core", **kw)(_noop)
    with pytest.raises(ValueError, match="unknown profile"):
        reg.case("TC_GEN_900_SRV", requirements=["GEN-002"], profile="centre", **kw)(_noop)
    with pytest.raises(ValueError, match="unknown feature"):
        reg.case(
            "TC_GEN_901_SRV",
            title="t",
            requirements=["GEN-002"],
            profile="center-core",
            kind="positive",
            features=["teleport"],
        )(_noop)
    with pytest.raises(ValueError, match="async def"):
        reg.case("TC_GEN_902_SRV", requirements=["GEN-002"], profile="center-core", **kw)(
            lambda ctx: None  # type: ignore[arg-type, return-value]
        )
    reg.case("TC_GEN_903_SRV", requirements=["GEN-002"], profile="center-core", **kw)(_noop)
    with pytest.raises(ValueError, match="declared twice"):
        reg.case("TC_GEN_903_SRV", requirements=["GEN-002"], profile="center-core", **kw)(_noop)
    with pytest.raises(ValueError, match="'XYZ-001' is not a requirement id"):
        reg.case("TC_GEN_904_SRV", requirements=["XYZ-001"], profile="center-core", **kw)(_noop)
    assert len(reg) == 1


async def _noop(ctx: CaseContext) -> None:
    return None


def test_coverage_lists_missing_musts_and_the_negative_share() -> None:
    result = invoke("coverage")
    assert result.exit_code in (0, 1)
    lines = result.output.splitlines()
    assert lines[0].startswith("cases: ") and "negative: " in lines[0] and "target ≥ 30%" in lines[0]
    assert lines[1].startswith("testable MUSTs covered: ")
    assert lines[-1] in ("coverage: OK",) or lines[-1].startswith("coverage: FAILED (")
    catalogue = load_requirements()
    report = compute_coverage(load_cases().cases, catalogue)
    missing = {r.id for r in report.missing_must}
    for rid in missing:
        assert f"MISSING MUST {rid} " in result.output
    assert (result.exit_code == 1) == bool(missing)
    data = json.loads(invoke("coverage", "--json").output)
    assert data["cases"] == len(load_cases()) and 0 <= data["negative_share"] <= 1
    assert all("reason" in u and u["reason"] for u in data["untestable"])


def test_coverage_passes_when_every_testable_must_has_a_case(tmp_path: Path) -> None:
    catalogue = load_requirements()
    cited = {rid for c in load_cases().cases for rid in c.requirements}
    entries = [catalogue[r].model_dump(mode="json") for r in sorted(cited)]
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(entries), encoding="utf-8")
    result = invoke("coverage", "--catalogue", str(tmp_path))
    assert result.exit_code == 0, result.output
    extra = dict(entries[0], id="GEN-999", level="MUST")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump([extra]), encoding="utf-8")
    load_requirements.cache_clear()
    result = invoke("coverage", "--catalogue", str(tmp_path))
    assert result.exit_code == 1 and "MISSING MUST GEN-999" in result.output
    lines = coverage_lines(compute_coverage([], {}))
    assert lines[-1] == "coverage: OK"


# --- verdicts, profiles, known failures --------------------------------------------------------------


def _result(case_id: str, verdict: Verdict, level: str = "MUST", message: str = "", **kw: Any) -> CaseResult:
    return CaseResult(
        id=case_id,
        title=f"title of {case_id}",
        profiles=("center-core",),
        requirements=("SEC-005",),
        level=level,
        kind="negative",
        verdict=verdict,
        message=message,
        **kw,  # type: ignore[arg-type]
    )


def test_profile_passes_only_if_every_applicable_must_ran_and_passed() -> None:
    should = _result("TC_GEN_007_SRV", Verdict.FAIL, "SHOULD", "no header")
    ok = [_result("TC_SEC_001_SRV", Verdict.PASS), should]
    passed = evaluate_profile("center-core", ok)
    assert passed.verdict == ProfileVerdict.PASS and passed.warnings
    assert evaluate_profile("center-core", ok, strict=True).verdict == ProfileVerdict.FAIL
    failing = [*ok, _result("TC_SEC_002_SRV", Verdict.FAIL, message="accepted")]
    assert evaluate_profile("center-core", failing).verdict == ProfileVerdict.FAIL
    skipped = [*ok, _result("TC_SEC_003_SRV", Verdict.SKIP, message="needs a test issuer")]
    assert evaluate_profile("center-core", skipped).verdict == ProfileVerdict.INCOMPLETE
    not_run = [*ok, _result("TC_SEC_003_SRV", Verdict.NOT_RUN)]
    assert evaluate_profile("center-core", not_run).verdict == ProfileVerdict.INCOMPLETE
    feature = [*ok, _result("TC_GEN_003_SRV", Verdict.SKIP, feature_skip=True)]
    assert evaluate_profile("center-core", feature).verdict == ProfileVerdict.PASS
    assert evaluate_profile("directory", ok).verdict == ProfileVerdict.INCOMPLETE


def test_known_failures_fail_the_run_when_stale(tmp_path: Path) -> None:
    path = tmp_path / "known.yaml"
    path.write_text(
        "TC_SEC_001_SRV: {verdict: fail, reason: TOKEN_MISSING}\n"
        "TC_SEC_002_SRV: {verdict: fail}\n"
        "TC_SEC_003_SRV: {verdict: error}\n"
        "TC_SEC_004_SRV: {verdict: fail, reason: 'role claim'}\n"
        "TC_ZZZ_001_SRV: {}\n",
        encoding="utf-8",
    )
    known = load_known_failures(path)
    results = [
        _result("TC_SEC_001_SRV", Verdict.FAIL, message="expected TOKEN_MISSING, got OK"),
        _result("TC_SEC_002_SRV", Verdict.PASS),
        _result("TC_SEC_003_SRV", Verdict.FAIL, message="x"),
        _result("TC_SEC_004_SRV", Verdict.FAIL, message="something else"),
    ]
    registered = ["TC_SEC_001_SRV", "TC_SEC_002_SRV", "TC_SEC_003_SRV", "TC_SEC_004_SRV"]
    stale = apply_known_failures(results, known, registered)
    assert [s.split(":")[0] for s in stale] == [*registered[1:], "TC_ZZZ_001_SRV"]
    assert "now passes" in stale[0] and "expected verdict error" in stale[1]
    assert "fails differently" in stale[2]
    assert results[0].known_failure == "matched"
    # Only a matched known failure left: the profile still says FAIL, but the run passes.
    only = [_result("TC_SEC_001_SRV", Verdict.FAIL, message="TOKEN_MISSING absent")]
    expected = {"TC_SEC_001_SRV": KnownFailure(reason="TOKEN_MISSING")}
    assert apply_known_failures(only, expected, registered) == []
    run = _run(only)
    assert run.profiles["center-core"].verdict == ProfileVerdict.FAIL and run.passed and run.exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("TC_SEC_001_SRV: {verdict: pass}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="fail or error"):
        load_known_failures(bad)


# --- reports -----------------------------------------------------------------------------------------


def _run(cases: list[CaseResult]) -> RunResult:
    decl = parse_declaration(demo_declaration("127.0.0.1:50051", insecure=True))
    return RunResult(
        run_id="0123abcd",
        suite_version="1.0.0a1",
        spec_version="1.0.0-alpha.1",
        schema_version="sha256:00",
        target="127.0.0.1:50051",
        declaration=decl.redacted(),
        profiles_declared=["center-core"],
        started="2026-01-01T00:00:00Z",
        finished="2026-01-01T00:00:02Z",
        duration_s=2.0,
        cases=cases,
        profiles={"center-core": evaluate_profile("center-core", cases)},
        requirement_texts={"SEC-005": "A server MUST reject a call without a bearer token <b>"},
    )


def _synthetic() -> RunResult:
    exchange = {
        "method": "/ansim.v1.CameraService/ListCameras",
        "identity": "no token",
        "request": {"parent": "centers/x"},
        "code": "OK",
        "details": "",
        "response": {},
        "error": None,
        "elapsed_s": 0.01,
    }
    return _run(
        [
            _result(
                "TC_SEC_001_SRV",
                Verdict.FAIL,
                message="expected UNAUTHENTICATED <script>",
                failing_exchange=0,
                exchanges=[exchange],
            ),
            _result("TC_SEC_002_SRV", Verdict.PASS),
            _result("TC_SEC_003_SRV", Verdict.ERROR, message="KeyError"),
            _result("TC_SEC_004_SRV", Verdict.SKIP, message="needs a test issuer"),
        ]
    )


def test_report_writers_produce_valid_json_junit_and_html(tmp_path: Path) -> None:
    result = _synthetic()
    paths = write_reports(result, tmp_path / "reports")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["format"] == "ansim-conformance-report/1"
    assert data["passed"] is False and data["exit_code"] == 1
    assert data["profiles"]["center-core"]["verdict"] == "fail"
    assert data["requirements"]["SEC-005"]["verdict"] == "fail"
    assert data["cases"][0]["exchanges"][0]["method"].endswith("ListCameras")
    assert data["declaration"]["credentials"]["test_issuer"]["issuer"] == "ansim-demo"
    suites = ET.parse(paths["junit"]).getroot()
    suite = suites.find("testsuite")
    assert suite is not None and suite.get("name") == "center-core" and suite.get("tests") == "4"
    assert suite.get("failures") == "1" and suite.get("errors") == "1" and suite.get("skipped") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None and "ListCameras" in (failure.text or "")
    html = paths["html"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html  # self-contained
    assert "&lt;script&gt;" in html and "&lt;b&gt;" in html  # escaped
    assert "A server MUST reject a call without a bearer token" in html
    assert "/ansim.v1.CameraService/ListCameras" in html


def test_declaration_secrets_are_redacted() -> None:
    data = demo_declaration("127.0.0.1:1", insecure=True)
    data["credentials"] = {
        "test_issuer": {"issuer": "x", "private_key_pem": "-----BEGIN PRIVATE KEY-----"},
        "tokens": {"APP_USER": "eyJsecret"},
    }
    redacted = json.dumps(parse_declaration(data).redacted())
    assert "eyJsecret" not in redacted and "BEGIN PRIVATE" not in redacted and "<redacted>" in redacted


# --- declaration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profiles": ["center-cor"]}, "profiles: unknown profile(s) ['center-cor']"),
        ({"target": "localhost"}, "target: 'localhost' is not HOST:PORT"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"tls": {"insecure": True, "ca_file": "ca.pem"}}, "tls: insecure: true excludes"),
        ({"credentials": {}}, "credentials: give a test_issuer (preferred) or tokens per role"),
        ({"credentials": {"tokens": {"KING": "t"}}}, "credentials.tokens: unknown role 'KING'"),
        ({"fixtures": {}}, "fixtures.center is required"),
        ({"test_retention_seconds": None}, "test_retention_seconds is required"),
        ({"test_retention_seconds": 1}, "test_retention_seconds: Input should be greater than or equal to 5"),
        ({"features": ["teleport"]}, "features: unknown feature(s) ['teleport']"),
    ],
)
def test_declaration_errors_name_the_field(change: dict[str, Any], message: str) -> None:
    data = {**demo_declaration("127.0.0.1:50051", insecure=True), **change}
    with pytest.raises(DeclarationError) as error:
        parse_declaration(data)
    assert message in str(error.value)


def test_declaration_files_resolve_relative_to_it(tmp_path: Path) -> None:
    data = demo_declaration("127.0.0.1:50051", mtls_address="127.0.0.1:50052")
    with pytest.raises(DeclarationError) as error:
        parse_declaration(data, tmp_path / "conformance")
    ca = tmp_path / "conformance" / ".." / "pki" / "ca.pem"
    assert f"tls.ca_file: file {ca} does not exist" in str(error.value)
    assert "credentials.test_issuer.private_key_file" in str(error.value)
    result = invoke("run", "--config", str(tmp_path / "nope.yaml"), "--report-dir", str(tmp_path / "r"))
    assert result.exit_code == 2 and "cannot read the declaration" in result.output


# --- descriptors, tokens, wire helpers ---------------------------------------------------------------


def _camera_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    camera_pb2.DESCRIPTOR.CopyToProto(proto)
    return proto


def test_descriptor_comparison_catches_every_kind_of_drift() -> None:
    from ansim.v1 import common_pb2

    common = descriptor_pb2.FileDescriptorProto()
    common_pb2.DESCRIPTOR.CopyToProto(common)
    standard = [_camera_file(), common]
    services = ["ansim.v1.CameraService"]
    assert compare(standard, standard, services) == []

    def drifted(mutate: Any) -> list[str]:
        served = _camera_file()
        mutate(served)
        return compare(standard, [served, common], services)

    def json_name(f: descriptor_pb2.FileDescriptorProto) -> None:
        f.message_type[0].field[1].json_name = "management_number"

    def number(f: descriptor_pb2.FileDescriptorProto) -> None:
        f.message_type[0].field[1].number = 99

    def ftype(f: descriptor_pb2.FileDescriptorProto) -> None:
        f.message_type[0].field[1].type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES

    def streaming(f: descriptor_pb2.FileDescriptorProto) -> None:
        f.service[0].method[0].server_streaming = True

    def enum(f: descriptor_pb2.FileDescriptorProto) -> None:
        f.enum_type[0].value[1].number = 77

    def extra(f: descriptor_pb2.FileDescriptorProto) -> None:
        f.message_type.add(name="VendorExtension")

    assert any("json_name is 'management_number'" in d for d in drifted(json_name))
    assert any("field 2 (management_number) is missing" in d for d in drifted(number))
    assert any("type is 'bytes'" in d for d in drifted(ftype))
    assert any("server streaming is True" in d for d in drifted(streaming))
    assert any("number is 77" in d for d in drifted(enum))
    assert any("VendorExtension: defined in package ansim.v1" in d for d in drifted(extra))


def _decl_with_issuer(tmp_path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    data = demo_declaration("127.0.0.1:50051", insecure=True)
    data["credentials"] = {"test_issuer": {"issuer": "conformance-test", "private_key_pem": pem}}
    return parse_declaration(data), key.public_key()


def test_minted_tokens_carry_the_claims_and_the_intended_defects(tmp_path: Path) -> None:
    decl, public = _decl_with_issuer(tmp_path)
    tokens = Tokens(decl, "0123abcd")
    officer = jwt.decode(tokens.token("POLICE_OFFICER"), public, algorithms=["ES256"], audience="ansim")
    assert officer["role"] == "POLICE_OFFICER" and officer["agency"] == "agencies/seoul-112"
    assert officer["iss"] == "conformance-test" and officer["sub"].startswith("officers/seoul-112/")
    operator = jwt.decode(tokens.token("CENTER_OPERATOR"), public, algorithms=["ES256"], audience="ansim")
    assert operator["center"] == "centers/demo"
    expired = jwt.decode(
        tokens.expired("APP_USER"),
        public,
        algorithms=["ES256"],
        audience="ansim",
        options={"verify_exp": False},
    )
    assert expired["exp"] < datetime.now(UTC).timestamp() - 3000
    assert "role" not in jwt.decode(tokens.roleless("APP_USER"), options={"verify_signature": False})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens.forged("APP_USER"), public, algorithms=["ES256"], audience="ansim")


def test_wire_helpers() -> None:
    request = camera_pb2.ListCamerasRequest(parent="centers/x", page_size=3)
    parsed = camera_pb2.ListCamerasRequest.FromString(append_unknown_fields(request.SerializeToString()))
    assert parsed.parent == "centers/x" and parsed.page_size == 3
    for payload in MALFORMED_PAYLOADS.values():
        with pytest.raises(DecodeError):
            camera_pb2.ListCamerasRequest.FromString(payload)
