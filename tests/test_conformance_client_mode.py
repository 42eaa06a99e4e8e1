"""Client mode end to end: the harness center on loopback, the example clients as real processes.

For each client profile the well-behaved example client passes every case (through the real
``ansim conformance run --client`` command, exit code 0, the usual reports); for each
``--misbehave`` switch the run fails exactly the cases meant to catch that defect and exits 1.
Every run happens at once, so the module takes about as long as the slowest scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.harness.runmode import run_client_mode
from conformance.harness.session import HarnessSession
from conformance.requirements import load_requirements
from conformance.results import RunResult, Verdict
from conformance.runner import RunOptions

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "examples" / "clients"
SCRIPTS = {"app": "app_client.py", "reader-gateway": "gateway_client.py", "agency": "agency_client.py"}
ANSIM = Path(sys.executable).with_name("ansim")

#: misbehaviour → the ids of the cases that must fail (and no other).
EXPECTED: Mapping[str, Mapping[str, set[str]]] = {
    "app": {
        "no-request-id": {"TC_APP_002_CLT", "TC_APP_005_CLT"},
        "new-id-on-retry": {"TC_APP_001_CLT"},
        "reuse-request-id": {"TC_APP_003_CLT"},
        "wrong-order": {"TC_APP_008_CLT"},
        "no-resume": {"TC_APP_010_CLT"},
        "no-dedupe": {"TC_APP_011_CLT"},
        "trust-any-cert": {"TC_APP_014_CLT"},
    },
    "reader-gateway": {
        "reuse-event-id": {"TC_GW_001_CLT"},
        "no-resend": {"TC_GW_002_CLT"},
        "resend-rejected": {"TC_GW_003_CLT"},
        "press-late": {"TC_GW_004_CLT"},
        "no-backoff": {"TC_GW_005_CLT"},
        "no-window": {"TC_GW_006_CLT"},
        "trust-any-cert": {"TC_GW_011_CLT"},
    },
    "agency": {
        "no-resume": {"TC_AGY_002_CLT"},
        "ignore-gap": {"TC_AGY_003_CLT"},
        "no-dedupe": {"TC_AGY_004_CLT"},
        "new-id-on-retry": {"TC_AGY_006_CLT"},
        "reuse-request-id": {"TC_AGY_007_CLT"},
        "trust-any-cert": {"TC_AGY_011_CLT"},
    },
}


@dataclass
class CliRun:
    code: int
    report: dict[str, object]
    output: str


@dataclass
class Runs:
    cli: dict[str, CliRun]
    misbehaving: dict[tuple[str, str], RunResult]
    no_client: CliRun
    seconds: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_command(role: str, target: str, control: str, ca_file: Path, misbehave: str | None) -> list[str]:
    command = [sys.executable, str(CLIENTS / SCRIPTS[role]), "--target", target, "--control", control]
    command += ["--ca-file", str(ca_file), "--timeout", "45"]
    return command + (["--misbehave", misbehave] if misbehave else [])


def control_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/scenario", timeout=1) as response:
            ok: bool = response.status == 200
            return ok
    except OSError:
        return False


async def cli_run(role: str, report_dir: Path, *, with_client: bool = True, wait: float = 45) -> CliRun:
    """``ansim conformance run --client ROLE`` as a process, and the example client as another."""
    listen, control = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    harness = await asyncio.create_subprocess_exec(
        str(ANSIM),
        "conformance",
        "run",
        "--client",
        role,
        "--listen",
        listen,
        "--control",
        control,
        "--report-dir",
        str(report_dir),
        "--wait",
        str(wait),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    client = None
    if with_client:
        url = f"http://{control}"
        deadline = time.monotonic() + 20
        while not await asyncio.to_thread(control_up, url):
            assert time.monotonic() < deadline, "the harness's control API did not come up"
            await asyncio.sleep(0.1)
        ca_file = report_dir / "harness" / "pki" / "ca.pem"
        client = await asyncio.create_subprocess_exec(
            *client_command(role, listen, url, ca_file, None),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    out, _ = await asyncio.wait_for(harness.communicate(), 90)
    if client is not None:
        await asyncio.wait_for(client.wait(), 30)
    report_file = report_dir / "conformance-report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else {}
    return CliRun(harness.returncode or 0, report, out.decode(errors="replace"))


async def harness_run(role: str, misbehave: str, workdir: Path) -> RunResult:
    """The harness in this process (the runner's API), the misbehaving client as a process."""
    session = HarnessSession(role, "127.0.0.1:0", "127.0.0.1:0", workdir=workdir)
    processes: list[asyncio.subprocess.Process] = []
    starting: list[asyncio.Future[None]] = []

    def launch(s: HarnessSession) -> None:
        async def start() -> None:
            assert s.ca_file is not None
            processes.append(
                await asyncio.create_subprocess_exec(
                    *client_command(role, s.address, s.control_url, s.ca_file, misbehave),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )

        starting.append(asyncio.ensure_future(start()))

    try:
        return await run_client_mode(
            session,
            load_cases(),
            load_requirements(),
            RunOptions(profiles=[role]),
            wait_s=45,
            on_ready=launch,
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("client-mode")

    async def everything() -> Runs:
        started = time.monotonic()
        roles = list(SCRIPTS)
        cli = [cli_run(role, base / f"cli-{role}") for role in roles]
        bad = [(role, m) for role, table in EXPECTED.items() for m in table]
        misbehaving = [harness_run(role, m, base / f"{role}-{m}") for role, m in bad]
        no_client = cli_run("agency", base / "no-client", with_client=False, wait=1)
        results = await asyncio.gather(*cli, *misbehaving, no_client)
        return Runs(
            cli=dict(zip(roles, results[: len(roles)], strict=True)),  # type: ignore[arg-type]
            misbehaving=dict(zip(bad, results[len(roles) : -1], strict=True)),  # type: ignore[arg-type]
            no_client=results[-1],  # type: ignore[arg-type]
            seconds=time.monotonic() - started,
        )

    return asyncio.run(everything())


def failing(result: RunResult) -> set[str]:
    return {c.id for c in result.cases if c.verdict in (Verdict.FAIL, Verdict.ERROR)}


@pytest.mark.parametrize("role", list(SCRIPTS))
def test_well_behaved_client_passes_through_the_cli(runs: Runs, role: str) -> None:
    run = runs.cli[role]
    assert run.code == 0, run.output[-3000:]
    report = run.report
    assert report["profiles"][role]["verdict"] == "pass"  # type: ignore[index]
    verdicts = {c["id"]: c["verdict"] for c in report["cases"] if role in c["profiles"]}  # type: ignore[attr-defined]
    assert verdicts and set(verdicts.values()) == {"pass"}, verdicts
    # The report shows the recorded wire exchanges as evidence, as in server mode.
    assert any(c["exchanges"] for c in report["cases"] if role in c["profiles"])  # type: ignore[attr-defined]
    assert "harness scenario:" in " ".join(report["notes"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("role", "misbehave"), [(role, m) for role, table in EXPECTED.items() for m in table]
)
def test_each_misbehaviour_fails_exactly_its_cases(runs: Runs, role: str, misbehave: str) -> None:
    result = runs.misbehaving[(role, misbehave)]
    found = failing(result)
    messages = {c.id: c.message for c in result.cases if c.id in found}
    assert found == EXPECTED[role][misbehave], messages
    assert result.exit_code == 1
    assert result.profiles[role].verdict == "fail"


def test_no_client_is_not_a_pass(runs: Runs) -> None:
    run = runs.no_client
    assert run.code == 1, run.output[-2000:]
    assert run.report["profiles"]["agency"]["verdict"] != "pass"  # type: ignore[index]
    assert "did not finish" in " ".join(run.report["notes"])  # type: ignore[arg-type]


def test_the_whole_module_is_quick(runs: Runs) -> None:
    assert runs.seconds < 60, f"client-mode runs took {runs.seconds:.1f} s"
