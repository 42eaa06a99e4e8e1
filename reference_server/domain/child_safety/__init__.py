"""Child safety (spec §14, §15): the registry of wards, tags, readers and zones, tag-event ingest with
deduplication, the derivation rules, guardian notifications with the escalation ladder, and the
background scheduler for the time-based rules."""
