-- 0002_emergencies_dispatch: emergencies, their location fixes, dispatches and dispatch subscriptions
-- (spec §10, §13). Times are UTC RFC 3339 text with microseconds (reference_server.clock.to_rfc3339),
-- so text order is time order.

-- One row per emergency. `data` is the Emergency as operators see it (the true state); the
-- reporter's view is derived from it, except after a duress cancel, when it is frozen in
-- `reporter_frozen` [EMG-012].
CREATE TABLE emergencies (
    name               TEXT PRIMARY KEY,      -- centers/{center}/emergencies/{id}
    center             TEXT NOT NULL,         -- centers/{center}
    incident_id        TEXT NOT NULL UNIQUE,  -- [EMG-005]
    reporter_key       TEXT NOT NULL,         -- issuer|subject of the reporter; '' when the center raised it
    mode               INTEGER NOT NULL,      -- ansim.v1.Mode value
    kind               INTEGER NOT NULL,      -- ansim.v1.EmergencyKind value
    state              INTEGER NOT NULL,      -- ansim.v1.EmergencyState value (operators' view)
    reporter_active    INTEGER NOT NULL,      -- 1 while the emergency is active in the reporter's view
    create_time        TEXT NOT NULL,
    countdown_end_time TEXT,                  -- set while PENDING (the countdown timer's index)
    data               BLOB NOT NULL,         -- ansim.v1.Emergency, operators' view
    reporter_frozen    BLOB,                  -- ansim.v1.Emergency, reporter's view after a duress cancel
    duress_salt        BLOB,                  -- DuressVerifier, deleted when terminal [EMG-034]
    duress_digest      BLOB,
    system_key         TEXT UNIQUE            -- idempotency key of an emergency raised by the center
);
CREATE INDEX emergencies_by_center ON emergencies (center, create_time, name);
CREATE INDEX emergencies_by_reporter ON emergencies (reporter_key, mode, reporter_active);
CREATE INDEX emergencies_countdown ON emergencies (countdown_end_time) WHERE countdown_end_time IS NOT NULL;

-- Every accepted location fix of an emergency [EMG-001, EMG-020].
CREATE TABLE emergency_fixes (
    emergency TEXT NOT NULL REFERENCES emergencies (name),
    sequence  INTEGER,                        -- the app's StreamLocation sequence; NULL for a raise fix
    fix_time  TEXT NOT NULL,
    location  BLOB NOT NULL,                  -- ansim.v1.Location
    received  TEXT NOT NULL
);
CREATE UNIQUE INDEX emergency_fixes_sequence ON emergency_fixes (emergency, sequence);
CREATE INDEX emergency_fixes_time ON emergency_fixes (emergency, fix_time);

-- One row per dispatch; `data` is the ansim.v1.Dispatch.
CREATE TABLE dispatches (
    name         TEXT PRIMARY KEY,            -- centers/{center}/dispatches/{id}
    center       TEXT NOT NULL,
    emergency    TEXT NOT NULL REFERENCES emergencies (name),
    agency       TEXT NOT NULL,
    mode         INTEGER NOT NULL,
    state        INTEGER NOT NULL,            -- ansim.v1.DispatchState value
    create_time  TEXT NOT NULL,
    ack_deadline TEXT,                        -- set while PENDING and not escalated (the timer's index)
    data         BLOB NOT NULL
);
CREATE INDEX dispatches_by_emergency ON dispatches (emergency);
CREATE INDEX dispatches_by_scope ON dispatches (center, agency, mode, state);
CREATE INDEX dispatches_by_time ON dispatches (center, create_time, name);
CREATE INDEX dispatches_deadline ON dispatches (ack_deadline) WHERE ack_deadline IS NOT NULL;

-- A subscription scope of SubscribeDispatches: its events live in the outbox under
-- `{parent}/dispatchSubscriptions/{id}/dispatches` [DSP-013, DSP-021].
CREATE TABLE dispatch_subscriptions (
    id      TEXT PRIMARY KEY,
    parent  TEXT NOT NULL,
    agency  TEXT NOT NULL,
    mode    INTEGER NOT NULL,
    filter  TEXT NOT NULL,                    -- canonical form of sigungu_codes and area
    created TEXT NOT NULL,
    expires TEXT NOT NULL                     -- no fan-out after this (24 h after the last use)
);
CREATE INDEX dispatch_subscriptions_scope ON dispatch_subscriptions (parent, agency, mode, expires);
