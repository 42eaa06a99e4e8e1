-- 0010_home_handoff: a home center that handles an emergency raised here itself (fed_routes status
-- LOCAL) hands it off like any handling center once she has clearly left its area (spec §17.6,
-- FED-019): `outside_since` is the fix_time of the first of the consecutive current fixes wholly
-- outside its service area, NULL while the latest one touches it. `emergency` keeps the latest fix.
ALTER TABLE fed_routes ADD COLUMN outside_since TEXT;
