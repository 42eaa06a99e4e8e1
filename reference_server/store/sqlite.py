"""The SQLite store: one writer connection on a dedicated thread, reader connections beside it.

Durability: WAL journal with ``synchronous=FULL``, so a transaction that returned from commit —
and hence every response the center acknowledged — survives power loss, not only a process crash.
Measured on the development VM (ext4 on a virtual disk, 1,000 one-event transactions through the
async API, thread hops included): FULL 0.46 ms per commit, NORMAL 0.25 ms. At the center's expected
rates (tens of writes per second) FULL is far from the bottleneck, so we keep it. Re-measure with
``python -m reference_server.store.bench DIR``.

Concurrency: writes are serialized by an asyncio lock and run on the writer thread (SQLite allows
one writer at a time anyway); ``BEGIN IMMEDIATE`` takes the write lock up front so a transaction
never fails half-way on a lock upgrade. Reads outside transactions use separate connections on a
small thread pool and see the last committed state (WAL snapshot isolation).

Statements: a transaction's ``execute``/``fetchone``/``fetchall`` run on the event loop itself, on
the writer connection the transaction holds the lock of. Inside ``BEGIN IMMEDIATE`` they never wait
for a lock and never fsync (WAL appends reach the disk at COMMIT), so each takes microseconds —
less than handing it to the writer thread and back, which under load cost more than the statement
and let the loop sit idle between them. BEGIN IMMEDIATE is tried on the loop too, without a busy
timeout; only when another connection holds the write lock does it go to the writer thread and
wait there. What may wait or take long stays on the writer thread: a contended BEGIN (busy
timeout), COMMIT (fsync, checkpoints) and ``Transaction.run`` (bulk work).

Group commit: the fsync of a FULL commit is most of a small transaction's cost, so transactions
that queue up while one runs share the next commit. Each :meth:`SqliteStore.transaction` runs in
its own ``SAVEPOINT`` inside one open SQLite transaction (the *batch*): a transaction that fails
rolls back to its savepoint alone; one that succeeds releases it. The transaction that finishes
with nobody else queued for the writer commits the batch — ONE fsync for all of them — and each
caller's ``async with`` exits only after the commit that contains its transaction, so an
acknowledged write is as durable as before and a crash before that commit loses only transactions
nobody was told about. A later transaction of a batch may see an earlier one's writes before they
are committed; they commit or fail together, so nothing it returns outlives what it read.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock, SystemClock, from_rfc3339, to_rfc3339
from reference_server.store import audit
from reference_server.store.interface import AuditProblem, AuditRecord, Params, Row, StoredEvent
from reference_server.store.migrations import Migration, apply_migrations, bundled_migrations

T = TypeVar("T")
log = logging.getLogger("ansim.store")

READER_THREADS = 4
_AUDIT_COLUMNS = "seq, time, actor, action, resource, purpose, outcome, prev_hash, hash"


#: How long a connection waits for a lock another connection (process) holds, ms.
BUSY_TIMEOUT_MS = 30_000
#: Page cache of the writer connection, KiB (see _connect).
WRITER_CACHE_KIB = 16 * 1024


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{path}: could not switch to WAL journal mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        # One SOS appends an event to every dispatch subscription's scope: with 1,000 subscribers
        # that dirties ~1,000 scattered outbox pages in one transaction. SQLite's default cache
        # (2 MiB, ~500 pages) then spills them to the WAL mid-transaction; 16 MiB keeps them.
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    return conn


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    return [dict(r) for r in cursor.fetchall()]


#: The columns of a stored event, its payload from the shared copy when it has one, and the
#: tables they come from (``e`` is ``events``).
EVENT_COLUMNS = (
    "e.scope AS scope, e.sequence AS sequence, e.type AS type,"
    " COALESCE(p.payload, e.payload) AS payload, e.mode AS mode, e.created AS created"
    " FROM events e LEFT JOIN event_payloads p ON p.id = e.payload_id"
)


def _event(row: Row) -> StoredEvent:
    return StoredEvent(
        row["scope"],
        row["sequence"],
        row["type"],
        bytes(row["payload"]),
        row["mode"],
        from_rfc3339(row["created"]),
    )


def _audit(row: Row) -> AuditRecord:
    return AuditRecord(**row)


#: Host parameters per statement when looking up many scopes (SQLite allows 32,766).
_IN_CHUNK = 500


def _last_sequences(c: sqlite3.Connection, scopes: list[str]) -> dict[str, int]:
    """The last sequence of each of ``scopes`` (distinct, each in event_scopes)."""
    out: dict[str, int] = {}
    for i in range(0, len(scopes), _IN_CHUNK):
        chunk = scopes[i : i + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for scope, last in c.execute(
            f"SELECT scope, last_sequence FROM event_scopes WHERE scope IN ({marks})", chunk
        ):
            out[scope] = int(last)
    return out


_SAVEPOINT = "ansim_tx"


@dataclass(eq=False)
class _Batch:
    """Transactions released into one open SQLite transaction, committed together."""

    #: Resolved (or failed) once the batch is committed (or lost); callers wait for it.
    done: asyncio.Future[None]
    members: list[SqliteTransaction] = field(default_factory=list)
    error: BaseException | None = None
    #: Committed or rolled back (on the writer thread); ``done`` follows on the loop.
    ended: bool = False


class SqliteTransaction:
    """A write transaction on the writer connection (see :class:`reference_server.store.Transaction`)."""

    def __init__(self, store: SqliteStore, now: datetime) -> None:
        self._store = store
        self.now = now
        self._callbacks: list[Callable[[], None]] = []

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread inside this transaction (SQLite only); for
        bulk work that should not hold up the event loop."""
        return await self._store._on_writer(fn)

    def _inline(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` right here, on the event loop (see "Statements" in the module
        docstring): the transaction holds the write lock, so nothing else uses the connection."""
        conn = self._store._writer
        assert conn is not None
        return fn(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return self._inline(lambda c: c.execute(sql, params).rowcount)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        def one(c: sqlite3.Connection) -> Row | None:
            row = c.execute(sql, params).fetchone()
            return dict(row) if row is not None else None

        return self._inline(one)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return self._inline(lambda c: _rows(c.execute(sql, params)))

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def idempotency_lookup(
        self, caller: str, method: str, request_id: str, request_hash: bytes
    ) -> bytes | None:
        row = await self.fetchone(
            "SELECT request_hash, response, expires FROM idempotency"
            " WHERE caller = ? AND method = ? AND request_id = ?",
            (caller, method, request_id),
        )
        if row is None or from_rfc3339(row["expires"]) <= self.now:
            return None
        if bytes(row["request_hash"]) != request_hash:
            raise AnsimError(
                error_pb2.ERROR_REASON_REQUEST_ID_REUSED,
                "this request_id was used before with a different request; use a new request_id",
            )
        return bytes(row["response"])

    async def idempotency_record(
        self, caller: str, method: str, request_id: str, request_hash: bytes, response: bytes
    ) -> None:
        expires = self.now + self._store.idempotency_ttl
        await self.execute(
            "INSERT OR REPLACE INTO idempotency"
            " (caller, method, request_id, request_hash, response, created, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (caller, method, request_id, request_hash, response, to_rfc3339(self.now), to_rfc3339(expires)),
        )

    async def append_event(self, scope: str, type: str, payload: bytes, mode: int) -> StoredEvent:
        return (await self.append_events([scope], type, payload, mode))[0]

    async def append_events(
        self, scopes: Sequence[str], type: str, payload: bytes, mode: int
    ) -> list[StoredEvent]:
        created = to_rfc3339(self.now)

        def append(c: sqlite3.Connection) -> list[int]:
            if len(scopes) == 1:  # the usual event: its sequence from the upsert itself
                (sequence,) = c.execute(
                    "INSERT INTO event_scopes (scope, last_sequence) VALUES (?, 1)"
                    " ON CONFLICT (scope) DO UPDATE SET last_sequence = last_sequence + 1"
                    " RETURNING last_sequence",
                    (scopes[0],),
                ).fetchone()
                c.execute(
                    "INSERT INTO events (scope, sequence, type, payload, mode, created, payload_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    (scopes[0], sequence, type, payload, mode, created),
                )
                return [int(sequence)]
            c.executemany(
                "INSERT INTO event_scopes (scope, last_sequence) VALUES (?, 1)"
                " ON CONFLICT (scope) DO UPDATE SET last_sequence = last_sequence + 1",
                [(scope,) for scope in scopes],
            )
            last = _last_sequences(c, list(dict.fromkeys(scopes)))
            # a scope named k times got the k sequences up to its last one, in the order named
            pending = Counter(scopes)
            sequences = []
            for scope in scopes:
                pending[scope] -= 1
                sequences.append(last[scope] - pending[scope])
            # one copy of a payload published to several scopes (0011_shared_event_payloads)
            shared = None
            stored = payload
            if len(scopes) > 1:
                shared = c.execute(
                    "INSERT INTO event_payloads (payload, created) VALUES (?, ?)", (payload, created)
                ).lastrowid
                stored = b""
            c.executemany(
                "INSERT INTO events (scope, sequence, type, payload, mode, created, payload_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (scope, seq, type, stored, mode, created, shared)
                    for scope, seq in zip(scopes, sequences, strict=True)
                ],
            )
            return sequences

        sequences = self._inline(append)
        at = from_rfc3339(created)
        return [
            StoredEvent(scope, seq, type, payload, mode, at)
            for scope, seq in zip(scopes, sequences, strict=True)
        ]

    async def append_audit(
        self, actor: str, action: str, resource: str, purpose: str, outcome: str
    ) -> AuditRecord:
        time = to_rfc3339(self.now)

        def append(c: sqlite3.Connection) -> AuditRecord:
            last = c.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last is not None else (1, audit.GENESIS_HASH)
            digest = audit.record_hash(seq, time, actor, action, resource, purpose, outcome, prev)
            record = AuditRecord(seq, time, actor, action, resource, purpose, outcome, prev, digest)
            c.execute(
                f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, time, actor, action, resource, purpose, outcome, prev, digest),
            )
            return record

        return self._inline(append)


class SqliteStore:
    """The embedded default store (see module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock | None = None,
        idempotency_ttl: timedelta = timedelta(hours=24),
        migrations: list[Migration] | None = None,
    ) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self.idempotency_ttl = idempotency_ttl
        self._migrations = migrations if migrations is not None else bundled_migrations()
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ansim-store-writer")
        self._reader_pool = ThreadPoolExecutor(
            max_workers=READER_THREADS, thread_name_prefix="ansim-store-reader"
        )
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._write_lock = asyncio.Lock()
        #: Tasks waiting for the write lock (a transaction that ends with none commits at once).
        self._waiting = 0
        #: The open SQLite transaction holding released savepoints, if any (see module docstring).
        self._batch: _Batch | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Clock | None = None,
        idempotency_ttl: timedelta = timedelta(hours=24),
        migrations: list[Migration] | None = None,
    ) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and apply pending migrations."""
        store = cls(path, clock=clock, idempotency_ttl=idempotency_ttl, migrations=migrations)
        path.parent.mkdir(parents=True, exist_ok=True)
        applied = await store._on_writer(store._open_writer)
        if applied:
            log.info("applied migrations", extra={"migrations": applied})
        return store

    def _open_writer(self, _: sqlite3.Connection | None) -> list[str]:
        self._writer = _connect(self.path, readonly=False)
        return apply_migrations(self._writer, self._migrations, self.clock)

    async def _on_writer(self, fn: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, lambda: fn(self._writer))

    async def _shielded(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` on the writer; completes even if the awaiting task is cancelled meanwhile."""
        future = asyncio.ensure_future(self._on_writer(fn))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await future
            raise

    async def _acquire(self) -> None:
        """Take the write lock, counted in ``_waiting`` while queued for it."""
        self._waiting += 1
        try:
            await self._write_lock.acquire()
        except BaseException:
            self._waiting -= 1
            # The last transaction left the batch open for the queue; if the queue is gone, close it.
            if self._waiting == 0 and self._batch is not None:
                self._start_flush(self._batch)
            raise
        self._waiting -= 1

    def _start_flush(self, batch: _Batch) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        return task

    async def _flush(self, batch: _Batch) -> None:
        """Commit ``batch`` unless that happened already; raise if the batch failed."""
        if not batch.done.done():
            await self._acquire()
            try:
                if not batch.ended:
                    await self._on_writer(lambda c: self._end_batch(c, batch))
                self._settle(batch)
            finally:
                self._write_lock.release()
        batch.done.result()

    def _end_batch(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        """(writer thread) COMMIT the batch — one fsync for all its members — or ROLLBACK it when it
        has none."""
        self._batch = None
        batch.ended = True
        try:
            conn.execute("COMMIT" if batch.members else "ROLLBACK")
        except BaseException as error:
            batch.error = error
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _settle(self, batch: _Batch) -> None:
        """(loop, under the write lock) Wake the callers of an ended batch; run the on_commit
        callbacks of its members in commit order."""
        if not batch.ended or batch.done.done():
            return
        if batch.error is not None:
            batch.done.set_exception(batch.error)
            batch.done.exception()  # retrieved here: every member may have been cancelled meanwhile
            return
        batch.done.set_result(None)
        for tx in batch.members:
            for callback in tx._callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("on_commit callback failed")

    def _begin(self, conn: sqlite3.Connection) -> None:
        """(writer thread) Open the batch's transaction if needed, then the transaction's savepoint."""
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"SAVEPOINT {_SAVEPOINT}")

    def _begin_at_once(self, conn: sqlite3.Connection) -> bool:
        """(loop) :meth:`_begin` without waiting: False, with nothing begun, when another
        connection holds the write lock (e.g. an import in another process) — then the writer
        thread begins and waits for it. Saves a thread round trip on the usual, uncontended path."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        return True

    def _close_savepoint(
        self, conn: sqlite3.Connection, batch: _Batch, tx: SqliteTransaction | None, commit: bool
    ) -> None:
        """Release ``tx``'s savepoint into the batch, or roll it back alone when ``tx`` is None; then
        with ``commit`` end the batch (on the writer thread then: COMMIT fsyncs)."""
        try:
            if not conn.in_transaction:
                raise AnsimError(
                    error_pb2.ERROR_REASON_INTERNAL, "the store rolled back a write; nothing was stored"
                )
            if tx is None:
                conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
            conn.execute(f"RELEASE {_SAVEPOINT}")
        except BaseException as error:
            # SQLite ended the whole transaction (I/O error, disk full…) or cannot end the
            # savepoint: the batch is lost, and with it every member not yet committed.
            self._batch = None
            batch.ended = True
            batch.error = error
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return
        if tx is not None:
            batch.members.append(tx)
        if commit:
            self._end_batch(conn, batch)

    async def _end_transaction(self, batch: _Batch, tx: SqliteTransaction | None) -> None:
        """Close the savepoint of ``tx`` (rolled back when None); the batch is committed now if
        nobody is queued for the writer, else by the last of the queue (or a member's flush)."""
        commit = self._waiting == 0
        if commit:
            await self._shielded(lambda c: self._close_savepoint(c, batch, tx, True))
        else:
            assert self._writer is not None
            self._close_savepoint(self._writer, batch, tx, False)
        self._settle(batch)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        if self._closed:
            raise AnsimError(error_pb2.ERROR_REASON_SERVER_UNAVAILABLE, "the store is closed (shutting down)")
        await self._acquire()
        try:
            batch = self._batch
            if batch is None:
                batch = self._batch = _Batch(asyncio.get_running_loop().create_future())
            try:
                if self._writer is not None and self._writer.in_transaction:
                    self._writer.execute(f"SAVEPOINT {_SAVEPOINT}")  # joins the open batch
                elif self._writer is None or not self._begin_at_once(self._writer):
                    await self._shielded(self._begin)  # BEGIN IMMEDIATE may wait (busy timeout)
                tx = SqliteTransaction(self, self.clock.now())
                yield tx
            except BaseException:
                await self._end_transaction(batch, None)
                raise
            await self._end_transaction(batch, tx)
        finally:
            self._write_lock.release()
        # Released into the batch: return only once the commit that contains it is done.
        if batch.done.done():
            batch.done.result()
        else:
            await asyncio.shield(self._start_flush(batch))

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, lambda: fn(self._reader()))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        def one(c: sqlite3.Connection) -> Row | None:
            row = c.execute(sql, params).fetchone()
            return dict(row) if row is not None else None

        return await self._read(one)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._read(lambda c: _rows(c.execute(sql, params)))

    async def events_after(self, scope: str, after_sequence: int, limit: int) -> list[StoredEvent]:
        rows = await self.fetchall(
            f"SELECT {EVENT_COLUMNS} WHERE e.scope = ? AND e.sequence > ? ORDER BY e.sequence LIMIT ?",
            (scope, after_sequence, limit),
        )
        return [_event(r) for r in rows]

    async def event_bounds(self, scope: str) -> tuple[int, int]:
        row = await self.fetchone(
            "SELECT pruned_through, last_sequence FROM event_scopes WHERE scope = ?", (scope,)
        )
        return (0, 0) if row is None else (int(row["pruned_through"]), int(row["last_sequence"]))

    async def prune_events(self, created_before: datetime) -> int:
        cutoff = to_rfc3339(created_before)

        def prune(c: sqlite3.Connection) -> int:
            c.execute(
                "UPDATE event_scopes SET pruned_through = MAX(pruned_through, COALESCE((SELECT MAX(sequence)"
                " FROM events e WHERE e.scope = event_scopes.scope AND e.created < ?), 0))",
                (cutoff,),
            )
            deleted = c.execute("DELETE FROM events WHERE created < ?", (cutoff,)).rowcount
            c.execute("DELETE FROM event_payloads WHERE created < ?", (cutoff,))
            return deleted

        async with self.transaction() as tx:
            return await tx.run(prune)

    async def purge_idempotency(self, now: datetime) -> int:
        async with self.transaction() as tx:
            cutoff = to_rfc3339(now)
            delete = "DELETE FROM idempotency WHERE expires <= ?"
            return await tx.run(lambda c: c.execute(delete, (cutoff,)).rowcount)

    async def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        rows = await self.fetchall(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [_audit(r) for r in rows]

    async def audit_head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest audit record, to anchor elsewhere for later verification."""
        row = await self.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return None if row is None else (int(row["seq"]), str(row["hash"]))

    async def verify_audit(self, anchor: tuple[int, str] | None = None) -> AuditProblem | None:
        verifier = audit.ChainVerifier(anchor)
        after = -1  # also see a record someone inserted with seq 0 or below
        while True:
            rows = await self.fetchall(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 1000", (after,)
            )
            if not rows or not verifier.feed(_audit(r) for r in rows):
                break
            after = rows[-1]["seq"]
        return verifier.finish()

    async def close(self) -> None:
        """Wait for the writer to finish, then close every connection."""
        if self._closed:
            return
        self._closed = True
        await self._acquire()
        try:
            batch = self._batch
            if batch is not None:
                await self._on_writer(lambda c: self._end_batch(c, batch))
                self._settle(batch)
            await self._on_writer(lambda c: c.close() if c is not None else None)
        finally:
            self._write_lock.release()

        def close_readers() -> None:
            # Reads already handed to the pool (by a task cancelled meanwhile, say) finish first:
            # closing a connection under a running query crashes the process (SIGSEGV).
            self._reader_pool.shutdown(wait=True)
            for conn in self._readers:
                conn.close()

        await asyncio.get_running_loop().run_in_executor(None, close_readers)
        self._writer_pool.shutdown(wait=True)
