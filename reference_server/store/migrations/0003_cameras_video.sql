-- 0003_cameras_video: the CCTV inventory, video grants and the hash-chained access record (spec §12).
-- Times are UTC RFC 3339 text with microseconds (reference_server.clock.to_rfc3339).

-- One row per dataset row (site). `key` is the int32 key of the in-memory CameraIndex.
CREATE TABLE cameras (
    key               INTEGER PRIMARY KEY,   -- 1, 2, 3, ... (index key, never reused)
    camera_id         TEXT NOT NULL UNIQUE,  -- id of centers/{center}/cameras/{camera_id} [CAM-001]
    management_number TEXT NOT NULL,         -- 관리번호 exactly as in the dataset (or derived)
    agency_code       TEXT NOT NULL,         -- 개방자치단체코드 ('' when absent): with 관리번호 the re-import key
    purpose           INTEGER NOT NULL,      -- ansim.v1.CameraPurpose value
    latitude          REAL,                  -- NULL = published without location [CAM-006]
    longitude         REAL,
    searchable        INTEGER NOT NULL,      -- 1 = has a location and is not DATASET_UPDATE_KIND_DELETE
    content_hash      TEXT NOT NULL,         -- SHA-256 of `data`: a re-import that changes nothing is a no-op
    data              BLOB NOT NULL,         -- ansim.v1.Camera without name, create_time, update_time
    create_time       TEXT NOT NULL,
    update_time       TEXT NOT NULL,
    change_seq        INTEGER NOT NULL       -- camera_meta.change_seq when the row last changed
);
CREATE UNIQUE INDEX cameras_source_key ON cameras (management_number, agency_code);
CREATE INDEX cameras_change_seq ON cameras (change_seq);
CREATE INDEX cameras_purpose ON cameras (purpose, camera_id);
CREATE INDEX cameras_agency ON cameras (agency_code, camera_id);

-- A single row: the change counter a running server polls to pick up imports.
CREATE TABLE camera_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    change_seq INTEGER NOT NULL
);
INSERT INTO camera_meta (id, change_seq) VALUES (1, 0);

-- Video grants (spec §12.4). `data` is the ansim.v1.VideoGrant as its officer sees it (with tokens).
CREATE TABLE video_grants (
    name        TEXT PRIMARY KEY,
    emergency   TEXT NOT NULL,
    agency      TEXT NOT NULL,
    officer     TEXT NOT NULL,    -- the officer's `sub`
    state       INTEGER NOT NULL, -- ansim.v1.VideoGrantState value
    not_after   TEXT NOT NULL,
    end_time    TEXT,             -- when it was revoked or expired (retention counts from here)
    data        BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX video_grants_active ON video_grants (state, not_after);
CREATE INDEX video_grants_emergency ON video_grants (emergency, state);

-- The access record (spec §12.7): one hash chain per center. Every column of the canonical form is
-- stored as written there (times as RFC 3339 microseconds, enums by name), so an auditor's
-- recomputation and `ansim audit verify` read exactly what ListAccessRecords serves.
CREATE TABLE access_records (
    sequence          INTEGER PRIMARY KEY,  -- 1, 2, 3, ... no gaps [VID-019]
    record_time       TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    name              TEXT NOT NULL,
    video_grant       TEXT NOT NULL,
    emergency         TEXT NOT NULL,
    agency            TEXT NOT NULL,
    subject_id        TEXT NOT NULL,
    subject_role      TEXT NOT NULL,
    subject_agency    TEXT NOT NULL,
    subject_center    TEXT NOT NULL,
    actor_id          TEXT NOT NULL,
    actor_role        TEXT NOT NULL,
    actor_agency      TEXT NOT NULL,
    actor_center      TEXT NOT NULL,
    cameras           TEXT NOT NULL,        -- camera names joined with ','
    purpose           TEXT NOT NULL,
    mode              TEXT NOT NULL,
    denial_reason     TEXT NOT NULL,
    revocation_reason TEXT NOT NULL,
    not_before        TEXT NOT NULL,        -- '' when absent
    not_after         TEXT NOT NULL,        -- '' when absent
    request_id        TEXT NOT NULL,
    previous_hash     TEXT NOT NULL,
    record_hash       TEXT NOT NULL
);
CREATE INDEX access_records_emergency ON access_records (emergency, sequence);
CREATE INDEX access_records_agency ON access_records (agency, sequence);
CREATE INDEX access_records_time ON access_records (record_time);
CREATE TRIGGER access_records_no_update BEFORE UPDATE ON access_records
BEGIN
    SELECT RAISE(ABORT, 'access_records is append-only');
END;
-- Only the retention purge deletes, and only the oldest record [AUD-003, VID-021].
CREATE TRIGGER access_records_oldest_first BEFORE DELETE ON access_records
WHEN OLD.sequence <> (SELECT MIN(sequence) FROM access_records)
BEGIN
    SELECT RAISE(ABORT, 'access_records are destroyed oldest first only');
END;

-- The chain anchor after a retention purge: the last destroyed record (sequence 0 = none).
CREATE TABLE access_record_anchor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    sequence    INTEGER NOT NULL,
    record_hash TEXT NOT NULL
);
INSERT INTO access_record_anchor (id, sequence, record_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
