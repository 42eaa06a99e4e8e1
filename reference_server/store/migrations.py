"""Versioned schema migrations: ``migrations/NNNN_name.sql`` applied once each, in name order.

Each applied file is recorded in ``schema_migrations`` (version = file stem, SHA-256 of its text,
time). A file is applied in one transaction together with its record, so a failing migration leaves
nothing behind. Editing a file after it was applied is refused at start-up (checksum mismatch): add a
new file instead. Services add their own file with the next free number, e.g.
``0002_emergency.sql``.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from reference_server.clock import Clock, to_rfc3339

FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


class MigrationError(RuntimeError):
    """A migration is malformed, failed, or differs from the one applied earlier."""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in ``reference_server/store/migrations``, in order."""
    root = resources.files("reference_server.store") / "migrations"
    found = [
        Migration(Path(entry.name).stem, entry.read_text(encoding="utf-8"))
        for entry in root.iterdir()
        if entry.name.endswith(".sql")
    ]
    return _ordered(found)


def _ordered(migrations: list[Migration]) -> list[Migration]:
    numbers: dict[str, str] = {}
    for m in migrations:
        match = FILE_NAME.match(m.version + ".sql")
        if match is None:
            raise MigrationError(f"{m.version}.sql: migration files are named NNNN_lower_snake.sql")
        if match.group(1) in numbers:
            raise MigrationError(f"{m.version}.sql and {numbers[match.group(1)]}.sql share a number")
        numbers[match.group(1)] = m.version
    return sorted(migrations, key=lambda m: m.version)


def apply_migrations(conn: sqlite3.Connection, migrations: list[Migration], clock: Clock) -> list[str]:
    """Apply the migrations not yet applied; return their versions. ``conn`` is in autocommit mode."""
    conn.execute(SCHEMA_TABLE)
    applied = {row[0]: row[1] for row in conn.execute("SELECT version, sha256 FROM schema_migrations")}
    done: list[str] = []
    for m in _ordered(migrations):
        if m.version in applied:
            if applied[m.version] != m.sha256:
                raise MigrationError(
                    f"{m.version}.sql changed after it was applied; add a new migration instead"
                )
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, sha256, applied_at) VALUES (?, ?, ?)",
                (m.version, m.sha256, to_rfc3339(clock.now())),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            conn.execute("ROLLBACK")
            raise MigrationError(f"{m.version}.sql failed: {error}") from error
        done.append(m.version)
    return done


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(ln.strip().startswith("--") for ln in current.strip().splitlines()):
        raise MigrationError(f"incomplete SQL statement at the end: {current.strip()[:60]!r}")
    return statements
