"""``ansim audit verify``: both chains intact after real traffic, and every kind of tampering — an
edited, removed, inserted or reordered record — detected and named, exit code 1."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc.aio
import pytest
from ansim.v1 import camera_pb2, camera_pb2_grpc
from typer.testing import CliRunner

from ansim_sdk.cli import app
from reference_server.domain.video import access_records
from tests.support.center import CenterProcess, start_center
from tests.support.sos import grant_for_new_sos, grant_request

pytestmark = pytest.mark.asyncio(loop_scope="session")
DB = "center.sqlite"


@pytest.fixture(scope="module")
def stopped_center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    process = start_center(tmp_path_factory.mktemp("audit"))
    yield process
    process.terminate()


def verify(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(data_dir)])
    return result.exit_code, result.output


def tampered(source: Path, target: Path, statements: Callable[[sqlite3.Connection], None]) -> Path:
    target.mkdir()
    shutil.copy(source / DB, target / DB)
    conn = sqlite3.connect(target / DB, isolation_level=None)
    for trigger in (
        "access_records_no_update",
        "access_records_oldest_first",
        "audit_log_no_update",
        "audit_log_no_delete",
    ):
        conn.execute(f"DROP TRIGGER {trigger}")  # what someone with write access to the file would do
    statements(conn)
    conn.close()
    return target


def move(conn: sqlite3.Connection, table: str, column: str, old: int, new: int) -> None:
    conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, old))


@pytest.fixture(scope="module")
async def traffic(stopped_center: CenterProcess) -> Path:
    """Grants, a denial and a revocation on the real SOS path; then the center stops and its
    store is ours."""
    first = await grant_for_new_sos(stopped_center)
    officer = stopped_center.metadata("POLICE_OFFICER")
    async with stopped_center.mtls_channel("POLICE_OFFICER") as channel:
        cameras = camera_pb2_grpc.CameraServiceStub(channel)
        await cameras.CreateVideoGrant(grant_request(first.emergency), metadata=officer)
        with pytest.raises(grpc.aio.AioRpcError):  # another agency's name: denied and recorded
            await cameras.CreateVideoGrant(
                grant_request(first.emergency, agency="agencies/another-112"), metadata=officer
            )
    async with stopped_center.channel() as channel:
        await camera_pb2_grpc.CameraServiceStub(channel).RevokeVideoGrant(
            camera_pb2.RevokeVideoGrantRequest(name=first.name, request_id=str(uuid.uuid4()), note="done"),
            metadata=stopped_center.metadata("CENTER_OPERATOR"),
        )
    assert stopped_center.terminate() == 0
    return stopped_center.data_dir


async def test_intact_chains_verify(traffic: Path) -> None:
    code, output = verify(traffic)
    assert code == 0, output
    assert "access record: 4 records, chain intact" in output
    assert "audit log:" in output and "TAMPERED" not in output


def _forge_third(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    for seq in (4, 3):
        move(conn, "access_records", "sequence", seq, seq + 1)
    second = access_records.from_row(
        conn.execute(f"SELECT {access_records.COLUMN_LIST} FROM access_records WHERE sequence = 2").fetchone()
    )
    values = {c: getattr(second, c) for c in access_records.COLUMNS}
    values.update(
        sequence=3, name="centers/demo/accessRecords/3", previous_hash=second.record_hash, purpose="forged"
    )
    forged = access_records.StoredRecord(**values)
    values["record_hash"] = access_records.compute_hash(forged)
    conn.execute(
        f"INSERT INTO access_records ({access_records.COLUMN_LIST}) VALUES ({', '.join('?' * len(values))})",
        tuple(values[c] for c in access_records.COLUMNS),
    )


def _swap(table: str, column: str) -> Callable[[sqlite3.Connection], None]:
    def swap(conn: sqlite3.Connection) -> None:
        move(conn, table, column, 2, -1)
        move(conn, table, column, 3, 2)
        move(conn, table, column, -1, 3)

    return swap


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        (
            "edited",
            lambda c: c.execute("UPDATE access_records SET purpose = 'x' WHERE sequence = 2"),
            "access record 2",
        ),
        ("removed", lambda c: c.execute("DELETE FROM access_records WHERE sequence = 2"), "access record 3"),
        ("inserted", _forge_third, "access record 4"),
        ("reordered", _swap("access_records", "sequence"), "access record 2"),
        (
            "audit-edited",
            lambda c: c.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2"),
            "audit log record 2",
        ),
        ("audit-removed", lambda c: c.execute("DELETE FROM audit_log WHERE seq = 1"), "audit log record 2"),
        ("audit-reordered", _swap("audit_log", "seq"), "audit log record 2"),
    ],
)
async def test_tampering_is_named(
    traffic: Path, tmp_path: Path, kind: str, change: Callable[[sqlite3.Connection], None], expected: str
) -> None:
    code, output = verify(tampered(traffic, tmp_path / kind, change))
    assert code == 1, output
    assert f"TAMPERED: {expected}:" in output, output
