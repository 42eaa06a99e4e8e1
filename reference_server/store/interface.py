"""What the rest of the center may ask of durable storage, independent of the database.

SQL passed to ``execute``/``fetch*`` uses ``?`` placeholders and the common subset of SQLite and
PostgreSQL; a PostgreSQL store translates placeholders. Everything a servicer writes for one request
(domain rows, the idempotency record, outbox events, audit records) goes through ONE
:class:`Transaction` so it commits or rolls back as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Row = dict[str, Any]
Params = Sequence[Any]


@dataclass(frozen=True)
class StoredEvent:
    """One outbox event."""

    scope: str
    sequence: int
    type: str
    payload: bytes
    mode: int
    created: datetime


@dataclass(frozen=True)
class AuditRecord:
    """One audit log record (see :mod:`reference_server.store.audit` for the hash)."""

    seq: int
    time: str
    actor: str
    action: str
    resource: str
    purpose: str
    outcome: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditProblem:
    """The first audit record at which the chain does not verify, and why."""

    seq: int
    problem: str


class Transaction(Protocol):
    """One atomic unit of writes. Obtained only from ``Store.transaction()``."""

    #: The transaction's time (from the store's clock), used for every timestamp it writes.
    now: datetime

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a write statement; return the number of rows changed."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after a successful commit (in commit order; never after a rollback)."""
        ...

    async def idempotency_lookup(
        self, caller: str, method: str, request_id: str, request_hash: bytes
    ) -> bytes | None:
        """The stored response of an earlier call with this key and payload; None if there is none
        (or it expired). AnsimError REQUEST_ID_REUSED if the key was used with another payload."""
        ...

    async def idempotency_record(
        self, caller: str, method: str, request_id: str, request_hash: bytes, response: bytes
    ) -> None:
        """Remember ``response`` for the idempotency period."""
        ...

    async def append_event(self, scope: str, type: str, payload: bytes, mode: int) -> StoredEvent:
        """Append an event to the outbox; it gets the next sequence of its scope."""
        ...

    async def append_events(
        self, scopes: Sequence[str], type: str, payload: bytes, mode: int
    ) -> list[StoredEvent]:
        """Append the same event to the outbox of each of ``scopes`` (in that order), as
        :meth:`append_event` would one by one; one batch of statements for a fan-out."""
        ...

    async def append_audit(
        self, actor: str, action: str, resource: str, purpose: str, outcome: str
    ) -> AuditRecord:
        """Append a record to the audit hash chain."""
        ...


class Store(Protocol):
    """Durable storage of one center."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """``async with store.transaction() as tx:`` — commit on normal exit, roll back on exception."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read committed data outside any transaction."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def events_after(self, scope: str, after_sequence: int, limit: int) -> list[StoredEvent]:
        """Events of ``scope`` with sequence > ``after_sequence``, ascending, at most ``limit``."""
        ...

    async def event_bounds(self, scope: str) -> tuple[int, int]:
        """``(pruned_through, last_sequence)`` of ``scope``; ``(0, 0)`` for a scope never used."""
        ...

    async def prune_events(self, created_before: datetime) -> int:
        """Delete events created before the cutoff; return how many were deleted."""
        ...

    async def purge_idempotency(self, now: datetime) -> int:
        """Delete expired idempotency records; return how many were deleted."""
        ...

    async def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]: ...

    async def verify_audit(self, anchor: tuple[int, str] | None = None) -> AuditProblem | None:
        """Check the audit chain; the first bad record, or None if it verifies."""
        ...

    async def close(self) -> None: ...
