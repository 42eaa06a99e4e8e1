-- 0001_core: the cross-cutting tables every service relies on.
-- Times are UTC RFC 3339 text with microseconds (reference_server.clock.to_rfc3339).

-- Outcome of each mutating call, kept for the idempotency period (AIP-155, [IDM-001]).
CREATE TABLE idempotency (
    caller       TEXT NOT NULL,  -- issuer|subject of the caller
    method       TEXT NOT NULL,  -- full gRPC method name
    request_id   TEXT NOT NULL,
    request_hash BLOB NOT NULL,  -- SHA-256 of the request's deterministic serialization
    response     BLOB NOT NULL,  -- serialized response message
    created      TEXT NOT NULL,
    expires      TEXT NOT NULL,
    PRIMARY KEY (caller, method, request_id)
) WITHOUT ROWID;
CREATE INDEX idempotency_expires ON idempotency (expires);

-- Per-scope sequence counters of the outbox, and how far history was pruned.
CREATE TABLE event_scopes (
    scope          TEXT PRIMARY KEY,
    last_sequence  INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The outbox: every event published, in commit order per scope.
CREATE TABLE events (
    scope    TEXT NOT NULL,
    sequence INTEGER NOT NULL,  -- 1, 2, 3, ... per scope, no gaps
    type     TEXT NOT NULL,
    payload  BLOB NOT NULL,
    mode     INTEGER NOT NULL,  -- ansim.v1.Mode value
    created  TEXT NOT NULL,
    PRIMARY KEY (scope, sequence)
) WITHOUT ROWID;
CREATE INDEX events_created ON events (created);

-- Append-only, hash-chained audit log (see reference_server/store/audit.py for the hash input).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,  -- 1, 2, 3, ... no gaps
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,        -- subject id of the caller
    action    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,        -- hash of record seq-1; 64 zeros for seq 1
    hash      TEXT NOT NULL         -- SHA-256 hex of the canonical serialization
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
