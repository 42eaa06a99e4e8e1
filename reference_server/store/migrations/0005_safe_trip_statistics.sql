-- 0005_safe_trip_statistics: safe trips (spec §11) and the daily incident aggregates of the
-- statistics (spec §18.5). Times are UTC RFC 3339 text with microseconds.

-- One row per trip. `body` is the ansim.v1.SafeTrip as its traveller sees it (the public view:
-- after a duress arrival it shows ARRIVED with `emergency` empty); the hidden duress emergency
-- lives in `duress_emergency` and is shown to operators only (TRIP-013).
CREATE TABLE st_trips (
    name             TEXT PRIMARY KEY,   -- centers/{c}/safeTrips/{id}
    traveler         TEXT NOT NULL,      -- token subject of the traveller
    mode             INTEGER NOT NULL,
    state            INTEGER NOT NULL,   -- SafeTripState
    active           INTEGER NOT NULL,   -- 1 while ACTIVE, ALERTING or ESCALATED
    body             BLOB NOT NULL,
    duress           BLOB,               -- serialized DuressVerifier, never returned
    duress_emergency TEXT NOT NULL DEFAULT '',
    start_fix_time   TEXT NOT NULL,
    last_fix_time    TEXT NOT NULL,      -- latest fix_time accepted (LOC-004)
    off_route_since  TEXT,               -- fix_time of the first fix of the current outside run
    last_location_event TEXT,            -- when LOCATION_UPDATED was last published (≤ 1 / 10 s)
    end_time         TEXT,
    fixes_purged     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX st_trips_one_active ON st_trips (traveler, mode) WHERE active = 1;
CREATE INDEX st_trips_active ON st_trips (active, state);
CREATE INDEX st_trips_end ON st_trips (fixes_purged, end_time);

-- Accepted fixes of a trip (purged with the location traces, PRV-010/011).
CREATE TABLE st_fixes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    trip     TEXT NOT NULL,
    fix_time TEXT NOT NULL,
    received TEXT NOT NULL,
    outside  INTEGER,                    -- 1 outside the corridor, 0 inside, NULL without corridor
    location BLOB NOT NULL               -- ansim.v1.Location
);
CREATE INDEX st_fixes_trip ON st_fixes (trip, fix_time);

-- Text messages sent to guardians' phones (the SMS outbox; no location, TRIP-017).
CREATE TABLE st_messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    trip    TEXT NOT NULL,
    phone   TEXT NOT NULL,
    body    TEXT NOT NULL,
    sent    TEXT NOT NULL,
    mode    INTEGER NOT NULL
);
CREATE INDEX st_messages_sent ON st_messages (sent);
CREATE INDEX st_messages_trip ON st_messages (trip);

-- Daily incident aggregates (STA-010): no incident id, no location, no person; kept without limit.
CREATE TABLE stat_daily (
    local_date TEXT NOT NULL,            -- YYYY-MM-DD, Asia/Seoul
    kind       INTEGER NOT NULL,         -- EmergencyKind
    mode       INTEGER NOT NULL,
    center     TEXT NOT NULL,            -- first handling center, centers/{c}
    zone       TEXT NOT NULL,            -- centers/{c}/zones/{z}, '' for none (one row per zone)
    zone_slot  INTEGER NOT NULL,         -- 1 for the row that counts the incident once (totals)
    count      INTEGER NOT NULL,
    PRIMARY KEY (local_date, kind, mode, center, zone, zone_slot)
) WITHOUT ROWID;

-- Incidents already counted, by a keyed hash of the incident id, so a repeated report counts once;
-- purged with the emergency resources (the aggregates stay).
CREATE TABLE stat_counted (
    incident_hash TEXT PRIMARY KEY,
    counted       TEXT NOT NULL
) WITHOUT ROWID;
