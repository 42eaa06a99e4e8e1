-- 0008_ward_mode: per ward, the mode of its most recent tag event (spec §14.5.3, CHD-017). A Ward has
-- no mode in v1; the events the center derives for a ward from time alone (MISSED_EXPECTED_ARRIVAL)
-- take this one, MODE_LIVE when the ward has none.
CREATE TABLE cs_ward_mode (
    ward     TEXT PRIMARY KEY,   -- centers/{c}/wards/{id}
    mode     INTEGER NOT NULL,   -- ansim.v1.Mode value of that event
    observed TEXT NOT NULL       -- its observed_time (the newest one wins, whatever the arrival order)
) WITHOUT ROWID;
