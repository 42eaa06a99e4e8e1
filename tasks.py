#!/usr/bin/env python3
"""One entry point that sets everything up on a fresh machine (Python 3.11+, nothing else).

    python3 tasks.py demo     # the main job: the multi-center demo on the embedded default store
    python3 tasks.py serve    # a single reference center with demo data (ansim serve --demo)
    python3 tasks.py test     # everything CI checks: proto drift, buf lint/breaking, ruff, mypy, pytest

It creates ./.venv on first use, installs the project with its pinned tools (`pip install -e
.[dev]`), and reinstalls only when pyproject.toml or setup.py changed. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".ansim-installed"


def _deps_hash() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py"):
        p = ROOT / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 -- tasks.py runs under any python3 a user has
        sys.exit(f"Python 3.11 or newer is required (this is {sys.version.split()[0]})")
    if not PY.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not STAMP.exists() or STAMP.read_text() != _deps_hash():
        print("installing ansim-interop with its pinned tools into .venv …", flush=True)
        run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        run([str(PY), "-m", "pip", "install", "--quiet", "-e", ".[dev]"])
        STAMP.write_text(_deps_hash())


def run(cmd: list[str], check: bool = True) -> int:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    if check and code != 0:
        sys.exit(code)
    return code


CHECKS: list[tuple[str, list[str]]] = [
    ("generated code and JSON Schemas match the protos", ["python", "-m", "tools.generate", "--check"]),
    ("buf lint (STANDARD + COMMENTS)", ["python", "-m", "tools.buf_checks", "lint"]),
    ("buf breaking (WIRE_JSON) against the last release", ["python", "-m", "tools.buf_checks", "breaking"]),
    ("ruff", ["ruff", "check", "."]),
    ("ruff format", ["ruff", "format", "--check", "."]),
    ("mypy", ["mypy"]),
]


def test(extra: list[str]) -> int:
    failed: list[str] = []
    for title, cmd in CHECKS:
        print(f"\n=== {title}: {' '.join(cmd)}", flush=True)
        if run([str(BIN / cmd[0]), *cmd[1:]], check=False) != 0:
            failed.append(title)
    print("\n=== pytest", flush=True)
    workers = os.environ.get("ANSIM_TEST_WORKERS", "2")
    code = run([str(BIN / "pytest"), "-n", workers, "-q", *extra], check=False)
    if failed:
        print(f"\nFAILED checks: {', '.join(failed)}", flush=True)
        return 1
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "serve", "test", "shell"}:
        print(__doc__)
        return 2
    ensure_env()
    task, rest = argv[0], argv[1:]
    if task == "test":
        return test(rest)
    if task == "demo":
        return run([str(BIN / "ansim"), "demo", *rest], check=False)
    if task == "serve":
        return run([str(BIN / "ansim"), "serve", "--demo", *rest], check=False)
    return run([os.environ.get("SHELL", "/bin/sh")], check=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
