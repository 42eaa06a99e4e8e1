-- 0011_shared_event_payloads: an event published to many scopes in one transaction (a dispatch
-- change to every matching subscription, §13.4) stores its payload once. Its outbox rows then carry
-- an empty `payload` and the `payload_id` of the shared copy; every payload of a shared row was
-- created with the rows (same transaction, same `created`), so pruning by age removes a payload
-- with the last of its rows. A NULL `payload_id` keeps the payload in the row, as before.
CREATE TABLE event_payloads (
    id      INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX event_payloads_created ON event_payloads (created);
ALTER TABLE events ADD COLUMN payload_id INTEGER REFERENCES event_payloads (id);
