-- 0007_emergency_routing: the routing decision of every emergency raised at this center (spec §17.3).
-- A row is written in the transaction that makes the emergency RAISED, so that an SOS whose routing
-- was interrupted (a crash, a lost background task) is found again and never dropped [FED-014].
CREATE TABLE emergency_routing (
    name        TEXT PRIMARY KEY,           -- centers/{me}/emergencies/{id}
    raised_time TEXT NOT NULL,              -- RFC 3339, when it became RAISED
    decision    TEXT NOT NULL DEFAULT ''    -- '' while undecided; local | forwarded | fallback
) WITHOUT ROWID;
CREATE INDEX emergency_routing_undecided ON emergency_routing (decision) WHERE decision = '';
