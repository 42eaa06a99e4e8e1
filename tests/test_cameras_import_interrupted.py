"""``ansim cameras import`` killed with SIGKILL mid-file: the store keeps whole batches only and a
re-import completes it, and no parser child outlives the killed import (``parse_worker``)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference_server.cameras.csv_export import write_csv
from reference_server.cameras.synthetic import synthetic_cameras
from reference_server.domain.cameras import import_blocks, importer, parse_worker

#: Enough rows that the child is still parsing, with a full queue, when the writer is killed.
ROWS = 120_000
IMPORT = [sys.executable, "-c", "from ansim_sdk.cli import main; main()", "cameras", "import"]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may never be reaped by this container's init)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _cameras(data_dir: Path) -> tuple[str, int]:
    with sqlite3.connect(data_dir / importer.DATABASE_FILE) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return str(check), int(conn.execute("SELECT count(*) FROM cameras").fetchone()[0])


def _committed(data_dir: Path) -> int:
    """Cameras committed so far; 0 while the store or its tables are still being created."""
    try:
        return _cameras(data_dir)[1]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_killed_import_leaves_whole_batches_and_no_orphan_parser(tmp_path: Path) -> None:
    csv_path = tmp_path / "cctv.csv"
    write_csv(synthetic_cameras(ROWS, seed=11), csv_path, "utf-8-sig")
    data_dir = tmp_path / "data"
    # ~7 blocks of 4 MiB: both parser children have blocks still to hand over when it is killed.
    blocks = {**os.environ, import_blocks.BLOCK_BYTES_ENV: str(4 << 20)}
    writer = subprocess.Popen([*IMPORT, str(csv_path), "--data-dir", str(data_dir), "-q"], env=blocks)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _committed(data_dir) == 0:
            time.sleep(0.2)  # until the first batch is committed: both processes are at work
        children = _children(writer.pid)
        assert len(children) == parse_worker.PARSERS, children  # the file is several blocks long
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        gone_by = time.monotonic() + parse_worker.POLL_S * 3
        while any(_running(child) for child in children) and time.monotonic() < gone_by:
            time.sleep(0.2)
        orphans = [child for child in children if _running(child)]
        for child in orphans:
            os.kill(child, signal.SIGKILL)
        assert not orphans, "a parser child outlived the killed import"
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    check, kept = _cameras(data_dir)
    assert check == "ok"
    assert 0 < kept < ROWS and kept % importer.BATCH_ROWS == 0, kept
    done = subprocess.run(
        [*IMPORT, str(csv_path), "--data-dir", str(data_dir), "-q"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"imported {ROWS - kept}, updated 0, unchanged {kept}, rejected 0" in done.stdout
    assert _cameras(data_dir) == ("ok", ROWS)
