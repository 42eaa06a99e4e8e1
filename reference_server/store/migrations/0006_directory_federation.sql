-- 0006_directory_federation: the national directory (spec §16) and federation between centers (§17).
-- Times are UTC RFC 3339 text with microseconds (reference_server.clock.to_rfc3339).

-- Directory: one row per registered center; the entry itself is the serialized CenterEntry.
CREATE TABLE directory_centers (
    name     TEXT PRIMARY KEY,          -- centers/{center}
    revision INTEGER NOT NULL UNIQUE,   -- directory-wide change counter [DIR-007]
    etag     TEXT NOT NULL,
    state    INTEGER NOT NULL,          -- CenterState value
    entry    BLOB NOT NULL              -- ansim.v1.CenterEntry, output-only fields set
) WITHOUT ROWID;

-- Directory: which center a certificate fingerprint belongs to, in any state [DIR-004].
CREATE TABLE directory_fingerprints (
    fingerprint TEXT PRIMARY KEY,
    center      TEXT NOT NULL
) WITHOUT ROWID;

-- Directory: the last revision issued (one row).
CREATE TABLE directory_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO directory_revision (id, revision) VALUES (1, 0);

-- Directory: Ed25519 signing keys [DIR-016] [DIR-017].
CREATE TABLE directory_keys (
    key_id      TEXT PRIMARY KEY,
    private_key BLOB NOT NULL,          -- raw 32-byte Ed25519 seed
    listed_time TEXT NOT NULL,          -- first listed by GetDirectoryKeys
    not_before  TEXT NOT NULL,
    not_after   TEXT NOT NULL
) WITHOUT ROWID;

-- Handling side: every emergency this center accepted by ForwardEmergency or HandoffEmergency.
CREATE TABLE fed_handled (
    name               TEXT PRIMARY KEY,   -- centers/{me}/emergencies/{id}
    incident_id        TEXT NOT NULL,
    home_center        TEXT NOT NULL,
    home_emergency     TEXT NOT NULL,
    mode               INTEGER NOT NULL,
    state              INTEGER NOT NULL,   -- EmergencyState value
    reason             INTEGER NOT NULL,   -- ForwardReason value
    via                TEXT NOT NULL,      -- JSON list
    previous_emergency TEXT NOT NULL DEFAULT '',
    transferred_to     TEXT NOT NULL DEFAULT '',
    duress             INTEGER NOT NULL DEFAULT 0,
    emergency          BLOB NOT NULL,      -- ansim.v1.ForwardedEmergency as received (latest location kept current)
    current_fix_time   TEXT NOT NULL,
    outside_since      TEXT,               -- fix_time of the first of consecutive fixes wholly outside [FED-019]
    accept_time        TEXT NOT NULL,
    update_time        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX fed_handled_incident ON fed_handled (incident_id);

-- Handling side: mirror events for the home center, kept until applied [FED-023].
CREATE TABLE fed_mirror_out (
    handling_emergency TEXT NOT NULL,
    sequence           INTEGER NOT NULL,
    home_center        TEXT NOT NULL,
    home_emergency     TEXT NOT NULL,
    mode               INTEGER NOT NULL,
    event              BLOB NOT NULL,      -- ansim.v1.MirrorEvent
    applied            INTEGER NOT NULL DEFAULT 0,
    created            TEXT NOT NULL,
    PRIMARY KEY (handling_emergency, sequence)
) WITHOUT ROWID;

-- Home side: the routing of each emergency raised here (who handles it, and how far mirrors got).
CREATE TABLE fed_routes (
    home_emergency     TEXT PRIMARY KEY,
    incident_id        TEXT NOT NULL,
    mode               INTEGER NOT NULL,
    status             TEXT NOT NULL,      -- LOCAL | FORWARDED | FALLBACK | ENDED
    handling_center    TEXT NOT NULL DEFAULT '',
    handling_emergency TEXT NOT NULL DEFAULT '',
    emergency          BLOB NOT NULL,      -- ansim.v1.ForwardedEmergency last sent
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_recovery      TEXT,
    recovery_interval  REAL NOT NULL DEFAULT 30,
    update_time        TEXT NOT NULL
) WITHOUT ROWID;

-- Home side: handling emergencies the home center knows, and the last mirror sequence applied [FED-024] [FED-025].
CREATE TABLE fed_mirror_in (
    home_emergency     TEXT NOT NULL,
    handling_emergency TEXT NOT NULL,
    last_applied       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (home_emergency, handling_emergency)
) WITHOUT ROWID;

-- Home side: mirror events applied, for the home emergency's watchers (the emergency area, if any, also gets them).
CREATE TABLE fed_mirror_log (
    home_emergency     TEXT NOT NULL,
    handling_emergency TEXT NOT NULL,
    sequence           INTEGER NOT NULL,
    event              BLOB NOT NULL,
    applied_time       TEXT NOT NULL,
    PRIMARY KEY (home_emergency, handling_emergency, sequence)
) WITHOUT ROWID;
