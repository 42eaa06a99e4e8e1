"""``ansim audit verify --data-dir D``: verify the center's two hash chains [AUD-004].

1. the internal audit log (``audit_log``, spec §4.3; hash input documented in ``store/audit.py``);
2. the video access record (``access_records``, spec §12.7), from its retention anchor.

Each chain is read in stored order and the first record whose sequence, link or hash is wrong is
named. Exit code 0 when both chains verify, 1 on any problem, 2 when there is no store. The check
opens the database read-only and may run while the center is serving.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from ansim_sdk.cli import app
from reference_server.domain.video import access_records
from reference_server.store import audit
from reference_server.store.interface import AuditRecord

audit_app = typer.Typer(help="The center's tamper-evident audit log and access record.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

DATABASE_FILE = "center.sqlite"
_AUDIT_COLUMNS = "seq, time, actor, action, resource, purpose, outcome, prev_hash, hash"


def verify_audit_log(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """(records checked, problem or None) for the internal audit log, in stored (rowid) order."""
    verifier = audit.ChainVerifier()
    count = 0
    rows = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY rowid")
    for row in rows:
        count += 1
        if not verifier.feed([AuditRecord(*row)]):
            break
    problem = verifier.finish()
    return count, None if problem is None else f"audit log record {problem.seq}: {problem.problem}"


def verify_access_records(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """(records checked, problem or None) for the access record chain, from its anchor."""
    try:
        anchor = access_records.anchor_of(conn)
    except sqlite3.OperationalError:
        return 0, None  # no camera area in this store
    count = 0
    checked: list[access_records.StoredRecord] = []
    for record in access_records.iter_stored(conn):
        count += 1
        checked.append(record)
    problem = access_records.verify(checked, anchor)
    return count, None if problem is None else f"access record {problem.sequence}: {problem.reason}"


@audit_app.command("verify")
def verify_command(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The center's data directory")] = Path("data"),
) -> None:
    """Verify the audit log and the access record; name the first bad record (exit 1)."""
    path = data_dir / DATABASE_FILE
    if not path.is_file():
        typer.echo(f"ansim audit verify: no store at {path}", err=True)
        raise typer.Exit(2)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)) as conn:
        results = [("audit log", *verify_audit_log(conn)), ("access record", *verify_access_records(conn))]
    failed = False
    for chain, count, problem in results:
        if problem is None:
            typer.echo(f"{chain}: {count} records, chain intact")
        else:
            failed = True
            typer.echo(f"{chain}: TAMPERED: {problem}")
    if failed:
        raise typer.Exit(1)
