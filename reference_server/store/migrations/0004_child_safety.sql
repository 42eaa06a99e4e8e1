-- 0004_child_safety: registry, tag events, derivation state and guardian notifications (spec §14, §15).
-- Times are UTC RFC 3339 text with microseconds (reference_server.clock.to_rfc3339).

-- The four registry resources (Ward, Tag, Reader, Zone), each the serialized ansim.v1 message.
CREATE TABLE cs_resources (
    name       TEXT PRIMARY KEY,   -- centers/{c}/{collection}/{id}
    collection TEXT NOT NULL,      -- wards | tags | readers | zones
    uid        TEXT,               -- tags only: the canonical uid (unique per center, CHD-005)
    body       BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX cs_resources_collection ON cs_resources (collection, name);
CREATE UNIQUE INDEX cs_resources_uid ON cs_resources (uid) WHERE uid IS NOT NULL;

-- Accepted tag events, kept 7 days for deduplication by event_id (TAG-003, TAG-004).
CREATE TABLE cs_tag_events (
    event_id     TEXT PRIMARY KEY,
    content_hash BLOB NOT NULL,    -- SHA-256 of the event's deterministic serialization
    received     TEXT NOT NULL,
    emergency    TEXT NOT NULL DEFAULT ''  -- emergency named in the ack, if any
) WITHOUT ROWID;
CREATE INDEX cs_tag_events_received ON cs_tag_events (received);

-- Sightings of wards: the track (§15.6), purged after retention.tag_sightings.
CREATE TABLE cs_sightings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ward        TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    reader      TEXT NOT NULL,
    reader_kind INTEGER NOT NULL,
    observed    TEXT NOT NULL,
    received    TEXT NOT NULL,
    location    BLOB NOT NULL,     -- ansim.v1.Location (tag fix, or the reader's position)
    derived     INTEGER NOT NULL DEFAULT 0,  -- DerivedEventKind value derived from it, if any
    mode        INTEGER NOT NULL
);
CREATE INDEX cs_sightings_ward ON cs_sightings (ward, observed);
CREATE INDEX cs_sightings_received ON cs_sightings (received);

-- Per ward: the observed time of the newest evaluated sighting (TAG-021).
CREATE TABLE cs_ward_clock (
    ward          TEXT PRIMARY KEY,
    last_observed TEXT NOT NULL
) WITHOUT ROWID;

-- Place presence per ward and place zone (§14.5.1).
CREATE TABLE cs_presence (
    ward          TEXT NOT NULL,
    zone          TEXT NOT NULL,
    inside        INTEGER NOT NULL,
    local_date    TEXT NOT NULL,   -- Asia/Seoul date the state belongs to (daily reset)
    last_sighting TEXT NOT NULL,   -- observed time of the last sighting by a reader of the zone
    PRIMARY KEY (ward, zone)
) WITHOUT ROWID;

-- Danger-zone hysteresis per ward and DANGER zone (§14.5.2).
CREATE TABLE cs_danger (
    ward      TEXT NOT NULL,
    zone      TEXT NOT NULL,
    inside    INTEGER NOT NULL,    -- 1 = IN
    run_count INTEGER NOT NULL,    -- consecutive in-zone sightings while NOT_IN
    run_start TEXT,                -- observed time of the run's first sighting
    last_in   TEXT,                -- observed time of the last in-zone sighting
    mode      INTEGER NOT NULL,
    PRIMARY KEY (ward, zone)
) WITHOUT ROWID;

-- Derived events (§14.5).
CREATE TABLE cs_derived (
    id          TEXT PRIMARY KEY,
    kind        INTEGER NOT NULL,
    ward        TEXT NOT NULL,     -- '' for BELL
    tag         TEXT NOT NULL,
    reader      TEXT NOT NULL,
    zone        TEXT NOT NULL,
    event_time  TEXT NOT NULL,
    mode        INTEGER NOT NULL,
    created     TEXT NOT NULL,
    emergency_kind INTEGER NOT NULL DEFAULT 0,  -- an emergency still to raise for it (0: none)
    emergency   TEXT NOT NULL DEFAULT '',
    location    BLOB
) WITHOUT ROWID;
CREATE INDEX cs_derived_tag ON cs_derived (tag, kind, created);
CREATE INDEX cs_derived_pending ON cs_derived (emergency_kind, emergency);

-- Missed expected arrivals evaluated (ward, zone, window, local date): each fires at most once.
CREATE TABLE cs_expected_checked (
    ward       TEXT NOT NULL,
    entry      TEXT NOT NULL,      -- zone|weekdays|start|end of the expected arrival
    local_date TEXT NOT NULL,
    PRIMARY KEY (ward, entry, local_date)
) WITHOUT ROWID;

-- Active emergency per source (a tag's button, a bell pole) so a further press raises no other.
CREATE TABLE cs_source_emergency (
    source    TEXT PRIMARY KEY,    -- tag or reader name
    emergency TEXT NOT NULL
) WITHOUT ROWID;

-- Escalation state shared by all copies of one derived event's notification (§15.3).
CREATE TABLE cs_alerts (
    derived_event_id TEXT PRIMARY KEY,
    severity         INTEGER NOT NULL,
    level            INTEGER NOT NULL,  -- EscalationLevel
    ack_deadline     TEXT,              -- NULL: INFO, acknowledged, or at the top rung
    mode             INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX cs_alerts_deadline ON cs_alerts (ack_deadline);

-- Notification copies, one per recipient (§15.2): the serialized ansim.v1.Notification.
CREATE TABLE cs_notifications (
    name             TEXT PRIMARY KEY,
    recipient        TEXT NOT NULL,     -- centers/{c}/guardians/{g}
    derived_event_id TEXT NOT NULL,
    ward             TEXT NOT NULL,
    created          TEXT NOT NULL,
    body             BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX cs_notifications_recipient ON cs_notifications (recipient, name);
CREATE INDEX cs_notifications_derived ON cs_notifications (derived_event_id);
CREATE INDEX cs_notifications_created ON cs_notifications (created);
