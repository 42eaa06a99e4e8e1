-- 0009_incident_retakeover: a center may hold one incident twice, once TRANSFERRED and once active,
-- when a handoff brings it back to a center that handed it off before (A → B → A, spec §17.6,
-- FED-009, FED-022): the old emergency stays TRANSFERRED and a new one takes the incident over with
-- the same incident id (EMG-005 keeps the sender's id). `incident_id` stays unique among the
-- emergencies that are not TRANSFERRED, so nothing else may repeat it.
--
-- SQLite cannot drop a column's UNIQUE constraint: the table is rebuilt. Foreign keys stay on (the
-- migration runs in one transaction), so the rows referring to emergencies are set aside, the old
-- table dropped, the new one renamed into place and the rows put back with their rowids.
CREATE TABLE emergencies_0009 (
    name               TEXT PRIMARY KEY,      -- centers/{center}/emergencies/{id}
    center             TEXT NOT NULL,         -- centers/{center}
    incident_id        TEXT NOT NULL,         -- [EMG-005], unique unless TRANSFERRED (index below)
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
INSERT INTO emergencies_0009 (rowid, name, center, incident_id, reporter_key, mode, kind, state,
    reporter_active, create_time, countdown_end_time, data, reporter_frozen, duress_salt, duress_digest,
    system_key)
SELECT rowid, name, center, incident_id, reporter_key, mode, kind, state, reporter_active, create_time,
    countdown_end_time, data, reporter_frozen, duress_salt, duress_digest, system_key FROM emergencies;

CREATE TABLE fixes_0009 AS SELECT rowid AS rid, * FROM emergency_fixes;
CREATE TABLE dispatches_0009 AS SELECT rowid AS rid, * FROM dispatches;
DELETE FROM emergency_fixes;
DELETE FROM dispatches;
DROP TABLE emergencies;
ALTER TABLE emergencies_0009 RENAME TO emergencies;
INSERT INTO emergency_fixes (rowid, emergency, sequence, fix_time, location, received)
SELECT rid, emergency, sequence, fix_time, location, received FROM fixes_0009;
INSERT INTO dispatches (rowid, name, center, emergency, agency, mode, state, create_time, ack_deadline,
    data)
SELECT rid, name, center, emergency, agency, mode, state, create_time, ack_deadline, data
FROM dispatches_0009;
DROP TABLE fixes_0009;
DROP TABLE dispatches_0009;

CREATE UNIQUE INDEX emergencies_incident ON emergencies (incident_id) WHERE state <> 8;  -- 8 TRANSFERRED
CREATE INDEX emergencies_by_center ON emergencies (center, create_time, name);
CREATE INDEX emergencies_by_reporter ON emergencies (reporter_key, mode, reporter_active);
CREATE INDEX emergencies_countdown ON emergencies (countdown_end_time) WHERE countdown_end_time IS NOT NULL;
