"""Child processes: wall time and peak RSS of a command, the bench's own echo server, a demo center."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core import REPO_ROOT, peak_rss_bytes


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO_ROOT), str(REPO_ROOT / "gen" / "python")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class Finished:
    seconds: float
    peak_rss: int  # bytes: the child's VmHWM, polled while it runs
    returncode: int
    stdout: str
    stderr: str


def measure(args: list[str], *, cwd: Path = REPO_ROOT, timeout: float = 900.0) -> Finished:
    """Run ``args`` to completion; wall time and the child's own peak RSS.

    The peak is the child's VmHWM read every few milliseconds (it only grows, so the last read holds
    the peak unless it came in the final milliseconds). ``ru_maxrss`` is no use here: Linux keeps it
    across fork and exec, so a child would inherit this (large) process's RSS as its floor.
    """
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ansim-bench-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        t0 = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=child_env(), stdout=out, stderr=err)
        deadline = t0 + timeout
        hwm = 0
        while True:
            hwm = max(hwm, _hwm(process.pid))
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, _ = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    return Finished(seconds, hwm, process.returncode, stdout, stderr)


def _hwm(pid: int) -> int:
    try:
        return peak_rss_bytes(pid)
    except (OSError, ValueError):  # exited (or a zombie without status) between polls
        return 0


def python(*code_or_module: str) -> list[str]:
    return [sys.executable, *code_or_module]
